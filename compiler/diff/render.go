package diff

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// detailsThreshold is the number of rows above which a Markdown section is
// folded into a <details> element.
const detailsThreshold = 10

// kindOrder is the order of kinds in summaries: escalations first.
var kindOrder = []Kind{
	KindGained, KindApprovalRemoved, KindMaskRemoved, KindDenyRemoved, KindExpiryExtended,
	KindLost, KindApprovalAdded, KindMaskAdded, KindDenyAdded, KindExpiryShortened, KindApprovalChanged,
	KindIdentityAdded, KindIdentityRemoved, KindResourceAdded, KindResourceRemoved, KindResourceChanged,
}

func (r *Report) countByKind() map[Kind]int {
	m := map[Kind]int{}
	for _, c := range r.Changes {
		m[c.Kind]++
	}
	return m
}

type jsonDoc struct {
	Changes []Change    `json:"changes"`
	Summary jsonSummary `json:"summary"`
}

type jsonSummary struct {
	Escalations int          `json:"escalations"`
	ByKind      map[Kind]int `json:"by_kind"`
}

// WriteJSON writes {"changes": [...], "summary": {"escalations": N,
// "by_kind": {...}}}.
func (r *Report) WriteJSON(w io.Writer) error {
	doc := jsonDoc{Changes: r.Changes, Summary: jsonSummary{Escalations: len(r.Escalations()), ByKind: r.countByKind()}}
	if doc.Changes == nil {
		doc.Changes = []Change{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write diff json: %w", err)
	}
	return nil
}

// mdEscape makes s safe inside a Markdown table cell.
func mdEscape(s string) string {
	return strings.NewReplacer(
		`\`, `\\`, "|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`,
		"<", "&lt;", ">", "&gt;", "\n", " ", "\r", " ",
	).Replace(s)
}

func mdCode(s string) string {
	if s == "" {
		return "–"
	}
	return "`" + strings.NewReplacer("`", "'", "|", `\|`, "\n", " ").Replace(s) + "`"
}

func mdRules(rs []string) string {
	if len(rs) == 0 {
		return "–"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = mdCode(r)
	}
	return strings.Join(parts, ", ")
}

// WriteMarkdown renders the report for a pull-request comment: a headline,
// a summary table by kind, then one section for escalations and one for
// other changes, each folded into <details> when long.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("## Gatehouse access diff\n\n")
	if r.Empty() {
		b.WriteString("No change in effective access.\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	esc := r.Escalations()
	if len(esc) > 0 {
		fmt.Fprintf(&b, "**:warning: %d change(s) widen access.**\n\n", len(esc))
	} else {
		b.WriteString("No change widens access.\n\n")
	}
	counts := r.countByKind()
	b.WriteString("| Change | Count | Widens access |\n|---|---:|:---:|\n")
	for _, k := range kindOrder {
		if counts[k] == 0 {
			continue
		}
		mark := ""
		if k.IsEscalation() {
			mark = "yes"
		}
		fmt.Fprintf(&b, "| `%s` | %d | %s |\n", k, counts[k], mark)
	}
	b.WriteString("\n")
	var other []Change
	for _, c := range r.Changes {
		if !c.Kind.IsEscalation() {
			other = append(other, c)
		}
	}
	writeSection(&b, "Escalations", esc)
	writeSection(&b, "Other changes", other)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeSection(b *strings.Builder, title string, cs []Change) {
	if len(cs) == 0 {
		return
	}
	fmt.Fprintf(b, "### %s (%d)\n\n", title, len(cs))
	fold := len(cs) > detailsThreshold
	if fold {
		fmt.Fprintf(b, "<details>\n<summary>Show %d changes</summary>\n\n", len(cs))
	}
	b.WriteString("| Identity | Resource | Change | Detail | Base rules | Head rules |\n|---|---|---|---|---|---|\n")
	for _, c := range cs {
		id := mdCode(c.Identity)
		if c.IdentityKind != "" && c.Identity != "" {
			id += " (" + mdEscape(c.IdentityKind) + ")"
		}
		fmt.Fprintf(b, "| %s | %s | `%s` | %s | %s | %s |\n",
			id, mdCode(c.Resource), c.Kind, mdEscape(c.Detail), mdRules(c.BaseRules), mdRules(c.HeadRules))
	}
	if fold {
		b.WriteString("\n</details>\n")
	}
	b.WriteString("\n")
}
