package conformance

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// DefaultExamples is how many example commands a group shows.
const DefaultExamples = 5

// Report is the grouped outcome of a replay.
type Report struct {
	BaseRef        string `json:"base_ref"`
	BaseRevision   string `json:"base_revision,omitempty"`
	HeadRef        string `json:"head_ref"`
	HeadRevision   string `json:"head_revision"`
	BaseIsRecorded bool   `json:"base_is_recorded,omitempty"`
	Sessions       int    `json:"sessions"`
	Statements     int    `json:"statements"`
	DistinctTexts  int    `json:"distinct_texts"`
	// Skipped counts events whose recorded effect is collateral (not
	// compared with the recording).
	Skipped int `json:"skipped_collateral"`
	// Changed counts statements whose head decision differs from base.
	Changed        int `json:"changed"`
	Acknowledged   int `json:"acknowledged"`
	Unacknowledged int `json:"unacknowledged"`
	// Groups: base to head changes by kind (a statement with several kinds
	// is in several groups).
	Groups []Group `json:"groups"`
	// Drift: statements whose base decision is not the recorded one.
	Drift      []Group `json:"drift,omitempty"`
	DriftCount int     `json:"drift_count"`
	// Stale are expectations that matched no change.
	Stale   []Expectation `json:"stale_expectations,omitempty"`
	Changes []Change      `json:"changes,omitempty"`
}

// Group summarises the changes of one kind.
type Group struct {
	Kind         Kind      `json:"kind"`
	Title        string    `json:"title"`
	Count        int       `json:"count"`
	Acknowledged int       `json:"acknowledged"`
	Identities   []string  `json:"identities"`
	Resources    []string  `json:"resources"`
	RuleIDs      []string  `json:"rule_ids"`
	Examples     []Example `json:"examples"`
}

// Example is one command of a group.
type Example struct {
	Identity     string   `json:"identity"`
	Resource     string   `json:"resource"`
	Command      string   `json:"command"`
	Pos          string   `json:"pos"`
	Base         Decision `json:"base"`
	Head         Decision `json:"head"`
	Acknowledged bool     `json:"acknowledged,omitempty"`
	Reason       string   `json:"acknowledged_reason,omitempty"`
}

// BuildReport groups res by change kind, applying the expectations (which
// mark matching changes acknowledged). examples <= 0 means DefaultExamples.
func BuildReport(res *Result, exps []Expectation, examples int) *Report {
	if examples <= 0 {
		examples = DefaultExamples
	}
	stale := acknowledge(res.Changes, exps)
	r := &Report{
		BaseRef: res.BaseRef, BaseRevision: res.BaseRevision, HeadRef: res.HeadRef, HeadRevision: res.HeadRevision,
		BaseIsRecorded: res.BaseIsRecorded, Sessions: res.Sessions, Statements: res.Statements,
		DistinctTexts: res.DistinctTexts, Skipped: res.Skipped, Changed: len(res.Changes), DriftCount: len(res.Drift),
		Changes: res.Changes,
	}
	for _, c := range res.Changes {
		if c.Acknowledged {
			r.Acknowledged++
		} else {
			r.Unacknowledged++
		}
	}
	for _, i := range stale {
		r.Stale = append(r.Stale, exps[i])
	}
	r.Groups = group(res.Changes, examples)
	r.Drift = group(res.Drift, examples)
	return r
}

func group(cs []Change, examples int) []Group {
	var out []Group
	for _, k := range Kinds {
		g := Group{Kind: k, Title: k.Title()}
		ids, res, rules, seen := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
		for i := range cs {
			c := &cs[i]
			if !slices.Contains(c.Kinds, k) {
				continue
			}
			g.Count++
			if c.Acknowledged {
				g.Acknowledged++
			}
			ids[c.Identity], res[c.Resource] = true, true
			for _, id := range c.Base.RuleIDs {
				rules[id] = true
			}
			for _, id := range c.Head.RuleIDs {
				rules[id] = true
			}
			key := c.Identity + "\x00" + c.Resource + "\x00" + c.Command
			if len(g.Examples) < examples && !seen[key] {
				seen[key] = true
				g.Examples = append(g.Examples, Example{Identity: c.Identity, Resource: c.Resource, Command: c.Command,
					Pos: c.Pos, Base: c.Base, Head: c.Head, Acknowledged: c.Acknowledged, Reason: c.Reason})
			}
		}
		if g.Count == 0 {
			continue
		}
		g.Identities, g.Resources, g.RuleIDs = keys(ids), keys(res), keys(rules)
		out = append(out, g)
	}
	return out
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Failed reports whether there are changes no expectation declares.
func (r *Report) Failed() bool { return r.Unacknowledged > 0 }

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

func shortRev(s string) string {
	if len(s) > 19 {
		return s[:19]
	}
	return s
}

func mdEscape(s string) string {
	r := strings.NewReplacer("|", "\\|", "<", "&lt;", ">", "&gt;", "\n", " ", "\r", " ")
	return r.Replace(s)
}

func mdCode(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	s = strings.ReplaceAll(s, "|", "\\|")
	if strings.Contains(s, "`") {
		return "``" + s + "``"
	}
	return "`" + s + "`"
}

func decisionText(d Decision) string {
	s := string(d.Effect)
	if d.Masked && d.Effect != "deny" {
		s += " (masked)"
	}
	if len(d.RuleIDs) > 0 {
		s += " by " + strings.Join(d.RuleIDs, ", ")
	}
	return s
}

// WriteMarkdown writes the report for a pull-request comment: a summary
// table, then one collapsible section per kind with example commands.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	r.markdown(&b, "##")
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) markdown(b *strings.Builder, h string) {
	fmt.Fprintf(b, "%s Replay of recorded sessions\n\n", h)
	base := r.BaseRef
	if r.BaseRevision != "" {
		base += " (" + shortRev(r.BaseRevision) + ")"
	}
	fmt.Fprintf(b, "%d statements in %d sessions (%d distinct texts) replayed under base %s and head %s (%s).\n\n",
		r.Statements, r.Sessions, r.DistinctTexts, mdCode(base), mdCode(r.HeadRef), mdCode(shortRev(r.HeadRevision)))
	switch {
	case r.Changed == 0:
		b.WriteString("**No behavioural change:** every recorded statement gets the same decision under head as under base.\n\n")
	case r.Unacknowledged == 0:
		fmt.Fprintf(b, "**%d statement(s) change, all declared in expected changes.**\n\n", r.Changed)
	default:
		fmt.Fprintf(b, "**%d statement(s) change; %d not declared in expected changes.**\n\n", r.Changed, r.Unacknowledged)
	}
	if len(r.Groups) > 0 {
		b.WriteString("| change | statements | acknowledged | identities | resources | rules |\n|---|---:|---:|---|---|---|\n")
		for _, g := range r.Groups {
			fmt.Fprintf(b, "| %s | %d | %d | %s | %s | %s |\n", g.Title, g.Count, g.Acknowledged,
				mdEscape(strings.Join(g.Identities, ", ")), mdEscape(strings.Join(g.Resources, ", ")), mdEscape(strings.Join(g.RuleIDs, ", ")))
		}
		b.WriteString("\n")
		for _, g := range r.Groups {
			writeGroup(b, g)
		}
	}
	if r.DriftCount > 0 {
		fmt.Fprintf(b, "<details><summary>%d statement(s) decided differently under base than recorded</summary>\n\n", r.DriftCount)
		b.WriteString("The recording was made under another policy or classifier version; these differences are not caused by this change.\n\n")
		for _, g := range r.Drift {
			writeGroup(b, g)
		}
		b.WriteString("</details>\n\n")
	}
	if len(r.Stale) > 0 {
		fmt.Fprintf(b, "%d expected change(s) matched nothing and can be removed:\n\n", len(r.Stale))
		for _, e := range r.Stale {
			fmt.Fprintf(b, "- %s\n", mdEscape(expectationText(e)))
		}
		b.WriteString("\n")
	}
}

func expectationText(e Expectation) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("kind", string(e.Kind))
	add("identity", e.Identity)
	add("resource", e.Resource)
	add("rule", e.Rule)
	add("command", e.Command)
	return strings.Join(parts, " ") + " (" + e.Reason + ")"
}

func writeGroup(b *strings.Builder, g Group) {
	fmt.Fprintf(b, "<details><summary><b>%s</b>: %d statement(s), %d acknowledged</summary>\n\n", g.Title, g.Count, g.Acknowledged)
	b.WriteString("| identity | resource | command | base | head | status |\n|---|---|---|---|---|---|\n")
	for _, e := range g.Examples {
		status := "**unexpected**"
		if e.Acknowledged {
			status = "acknowledged: " + mdEscape(e.Reason)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", mdEscape(e.Identity), mdEscape(e.Resource), mdCode(e.Command),
			mdEscape(decisionText(e.Base)), mdEscape(decisionText(e.Head)), status)
	}
	if g.Count > len(g.Examples) {
		fmt.Fprintf(b, "\n%d more not shown.\n", g.Count-len(g.Examples))
	}
	b.WriteString("\n</details>\n\n")
}

// JUnit types (the subset CI systems read).
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// junitSuite renders the replay as one suite: a case per change kind,
// failing when it has unacknowledged changes.
func (r *Report) junitSuite() junitSuite {
	s := junitSuite{Name: "gatehouse.replay"}
	for _, k := range Kinds {
		c := junitCase{Name: k.Title(), Classname: "replay." + string(k)}
		for _, g := range r.Groups {
			if g.Kind != k || g.Count == g.Acknowledged {
				continue
			}
			var b strings.Builder
			for _, e := range g.Examples {
				if !e.Acknowledged {
					fmt.Fprintf(&b, "%s: %s on %s: %s -> %s: %s\n", e.Pos, e.Identity, e.Resource,
						decisionText(e.Base), decisionText(e.Head), e.Command)
				}
			}
			c.Failure = &junitFailure{Message: fmt.Sprintf("%d unexpected change(s): %s", g.Count-g.Acknowledged, g.Title), Text: b.String()}
			s.Failures++
		}
		s.Cases = append(s.Cases, c)
		s.Tests++
	}
	return s
}

func writeJUnit(w io.Writer, suites ...junitSuite) error {
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: suites}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// WriteJUnit writes the report as JUnit XML.
func (r *Report) WriteJUnit(w io.Writer) error { return writeJUnit(w, r.junitSuite()) }
