package review

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
	"time"
)

// Output formats of Render.
const (
	FormatMarkdown = "markdown"
	FormatHTML     = "html"
	FormatCSV      = "csv"
	FormatJSON     = "json"
)

// ErrFormat: Render was asked for a format it does not know.
var ErrFormat = errors.New("review: unknown format (want markdown, html, csv or json)")

// Render writes the report in one of the formats: "markdown" (for a pull
// request or a ticket), "html" (a self-contained page), "csv" (one row
// per identity and grant, for spreadsheets) or "json" (the Report as is).
func Render(w io.Writer, rep *Report, format string) error {
	switch format {
	case FormatMarkdown, "md", "":
		return renderMarkdown(w, rep)
	case FormatHTML:
		return htmlReport.Execute(w, rep)
	case FormatCSV:
		return renderCSV(w, rep)
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	default:
		return fmt.Errorf("%w: %q", ErrFormat, format)
	}
}

// FormatTime renders a time for reports: "never" for zero.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04 MST")
}

// GrantStatus summarises a grant's state in a few words.
func GrantStatus(g *Grant) string {
	var s []string
	if g.Uses == 0 {
		s = append(s, "UNUSED: removal candidate")
	}
	if g.Expired {
		s = append(s, "expired")
	} else if g.ExpiringSoon {
		s = append(s, "expires soon")
	}
	if g.ReviewDue {
		s = append(s, "review due")
	}
	if len(s) == 0 {
		return "ok"
	}
	return strings.Join(s, ", ")
}

func mdEscape(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.NewReplacer("|", `\|`, "`", "'", "<", "&lt;", ">", "&gt;").Replace(s)
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

func renderMarkdown(w io.Writer, rep *Report) error {
	ew := &errWriter{w: w}
	p := ew.printf
	p("# Access review %s to %s\n\n", rep.Since.Format(time.DateOnly), rep.Until.Format(time.DateOnly))
	if rep.PolicyRevision != "" {
		p("Policy revision `%s`.\n\n", mdEscape(rep.PolicyRevision))
	}
	p("| identity | kind | sessions | sessions/week | last activity | grants | unused | denied | chains |\n")
	p("|---|---|---:|---:|---|---:|---:|---:|---|\n")
	for i := range rep.Identities {
		id := &rep.Identities[i]
		p("| %s | %s | %d | %.2f | %s | %d | %d | %d | %s |\n", mdEscape(id.Name), id.Kind, id.Sessions, id.SessionsPerWeek,
			FormatTime(id.LastActivity), len(id.Grants), len(id.UnusedGrants()), id.DeniedCount, chainText(id.Chains))
	}
	for i := range rep.Identities {
		id := &rep.Identities[i]
		p("\n## %s (%s", mdEscape(id.Name), id.Kind)
		if id.Owner != "" {
			p(", owner %s", mdEscape(id.Owner))
		}
		p(")\n\n")
		if !id.InPolicy {
			p("**Not in the policy any more**, but recorded in the period.\n\n")
		}
		p("### Still needed?\n\n")
		if id.Sessions == 0 && id.Commands == 0 {
			p("No activity in the period.\n\n")
		} else {
			p("%d session(s), %.2f per week, %d command(s); last activity %s.\n\n", id.Sessions, id.SessionsPerWeek, id.Commands, FormatTime(id.LastActivity))
		}
		p("### Least privilege?\n\n")
		if len(id.Grants) == 0 {
			p("No grants apply.\n\n")
		} else {
			p("| grant | effect | via | resources | uses | last use | expires | next review | status |\n")
			p("|---|---|---|---|---:|---|---|---|---|\n")
			for j := range id.Grants {
				g := &id.Grants[j]
				next := "-"
				if !g.NextReview.IsZero() {
					next = g.NextReview.Format(time.DateOnly)
				} else if g.ReviewDue {
					next = "never reviewed"
				}
				p("| `%s` | %s | %s | %s | %d | %s | %s | %s | %s |\n", mdEscape(g.RuleID), g.Effect, mdEscape(g.Via),
					mdEscape(strings.Join(g.Resources, ", ")), g.Uses, FormatTime(g.LastUse), orDash(g.Expires), next, GrantStatus(g))
			}
			p("\n")
			if u := id.UnusedGrants(); len(u) > 0 {
				p("Removal candidates (no use in the period):")
				for _, g := range u {
					p(" `%s`", mdEscape(g.RuleID))
				}
				p("\n\n")
			}
		}
		p("### Used and provable?\n\n")
		if len(id.Resources) == 0 {
			p("No resources touched.\n\n")
		} else {
			p("| resource | sessions | commands | denied | last use | statements | tables |\n|---|---:|---:|---:|---|---|---|\n")
			for _, r := range id.Resources {
				p("| %s | %d | %d | %d | %s | %s | %s |\n", mdEscape(r.Name), r.Sessions, r.Commands, r.Denied, FormatTime(r.LastUse),
					mdEscape(countText(r.Statements)), mdEscape(countText(r.Tables)))
			}
			p("\n")
		}
		p("Masked reads: %d. Denied attempts: %d. Hash chains: %s.\n\n", id.MaskedReads, id.DeniedCount, chainText(id.Chains))
		for _, br := range id.Chains.Broken {
			p("- chain of session `%s` broken at seq %d: %s\n", br.SessionID, br.Seq, mdEscape(br.Problem))
		}
		if len(id.Approvals) > 0 {
			p("| approval | status | rule | command | votes |\n|---|---|---|---|---|\n")
			for _, a := range id.Approvals {
				p("| `%s` | %s | %s | `%s` | %s |\n", a.ID, a.Status, mdEscape(a.RuleID), mdEscape(clip(a.Command, 80)), mdEscape(votesText(a)))
			}
			p("\n")
		}
		if len(id.Denied) > 0 {
			p("| denied at | resource | rules | command |\n|---|---|---|---|\n")
			for _, d := range id.Denied {
				p("| %s | %s | %s | `%s` |\n", FormatTime(d.Time), mdEscape(d.Resource), mdEscape(strings.Join(d.RuleIDs, ", ")), mdEscape(clip(d.Command, 80)))
			}
			p("\n")
		}
	}
	return ew.err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func countText(cs []Count) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Name + " " + strconv.Itoa(c.Count)
	}
	return strings.Join(parts, ", ")
}

func votesText(a Approval) string {
	parts := make([]string, 0, len(a.Votes))
	for _, v := range a.Votes {
		s := v.Approver + " " + v.Decision
		if v.Reason != "" {
			s += ": " + v.Reason
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func chainText(c ChainSummary) string {
	if c.Sessions == 0 {
		return "no sessions"
	}
	if c.OK() {
		return fmt.Sprintf("%d/%d verified", c.Verified, c.Sessions)
	}
	return fmt.Sprintf("%d/%d verified, %d BROKEN", c.Verified, c.Sessions, len(c.Broken))
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

func renderCSV(w io.Writer, rep *Report) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"identity", "kind", "sessions", "sessions_per_week", "last_activity", "rule_id", "effect", "via",
		"resources", "uses", "last_use", "expires", "expired", "review_due", "next_review", "unused", "denied", "masked_reads", "chains_ok"})
	for i := range rep.Identities {
		id := &rep.Identities[i]
		base := []string{id.Name, id.Kind, strconv.Itoa(id.Sessions), strconv.FormatFloat(id.SessionsPerWeek, 'f', 2, 64), csvTime(id.LastActivity)}
		tail := []string{strconv.Itoa(id.DeniedCount), strconv.Itoa(id.MaskedReads), strconv.FormatBool(id.Chains.OK())}
		if len(id.Grants) == 0 {
			row := append(append(base, "", "", "", "", "0", "", "", "", "", "", ""), tail...)
			_ = cw.Write(row)
			continue
		}
		for _, g := range id.Grants {
			next := ""
			if !g.NextReview.IsZero() {
				next = g.NextReview.Format(time.DateOnly)
			}
			row := append(append([]string(nil), base...), g.RuleID, g.Effect, g.Via, strings.Join(g.Resources, " "),
				strconv.Itoa(g.Uses), csvTime(g.LastUse), g.Expires, strconv.FormatBool(g.Expired), strconv.FormatBool(g.ReviewDue),
				next, strconv.FormatBool(g.Uses == 0))
			_ = cw.Write(append(row, tail...))
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// ChartBar is one bar of an activity chart.
type ChartBar struct {
	X, Y, W, H float64
	Label      string
}

// Chart lays out an identity's weekly activity as bars in a width x height
// box, for inline SVG.
func Chart(activity []int, since time.Time, width, height float64) []ChartBar {
	if len(activity) == 0 {
		return nil
	}
	peak := 1
	for _, n := range activity {
		peak = max(peak, n)
	}
	w := width / float64(len(activity))
	bars := make([]ChartBar, len(activity))
	for i, n := range activity {
		h := height * float64(n) / float64(peak)
		if n > 0 && h < 2 {
			h = 2
		}
		start := since.Add(time.Duration(i) * 7 * 24 * time.Hour)
		bars[i] = ChartBar{X: float64(i) * w, Y: height - h, W: max(w-1, 1), H: h,
			Label: fmt.Sprintf("week of %s: %d command(s)", start.Format(time.DateOnly), n)}
	}
	return bars
}

// TemplateFuncs are the helpers the HTML report uses; the dashboard shares
// them.
var TemplateFuncs = template.FuncMap{
	"time":        FormatTime,
	"date":        func(t time.Time) string { return t.Format(time.DateOnly) },
	"grantStatus": func(g Grant) string { return GrantStatus(&g) },
	"counts":      countText,
	"votes":       votesText,
	"chain":       chainText,
	"clip":        clip,
	"join":        strings.Join,
	"unused":      func(id Identity) []Grant { return id.UnusedGrants() },
	"chart":       func(id Identity, since time.Time) []ChartBar { return Chart(id.Activity, since, 240, 40) },
	"f2":          func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
}

var htmlReport = template.Must(template.New("review").Funcs(TemplateFuncs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Access review {{date .Since}} to {{date .Until}}</title>
<style>body{font-family:system-ui,sans-serif;color:#111;background:#fff;max-width:72rem;margin:1rem auto;padding:0 1rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #999;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#e8e8e8}.unused{color:#8a1c00;font-weight:bold}code{font-size:.9em}</style></head>
<body><h1>Access review {{date .Since}} to {{date .Until}}</h1>
{{with .PolicyRevision}}<p>Policy revision <code>{{.}}</code></p>{{end}}
<table><caption>Identities</caption><thead><tr><th scope="col">Identity</th><th scope="col">Kind</th><th scope="col">Sessions</th><th scope="col">Per week</th><th scope="col">Last activity</th><th scope="col">Grants</th><th scope="col">Unused</th><th scope="col">Denied</th><th scope="col">Hash chains</th></tr></thead><tbody>
{{range .Identities}}<tr><th scope="row"><a href="#id-{{.Name}}">{{.Name}}</a></th><td>{{.Kind}}</td><td>{{.Sessions}}</td><td>{{f2 .SessionsPerWeek}}</td><td>{{time .LastActivity}}</td><td>{{len .Grants}}</td><td>{{len (unused .)}}</td><td>{{.DeniedCount}}</td><td>{{chain .Chains}}</td></tr>
{{end}}</tbody></table>
{{$since := .Since}}
{{range .Identities}}<section id="id-{{.Name}}"><h2>{{.Name}} ({{.Kind}}{{with .Owner}}, owner {{.}}{{end}})</h2>
{{if not .InPolicy}}<p><strong>Not in the policy any more</strong>, but recorded in the period.</p>{{end}}
<h3>Still needed?</h3>
<p>{{.Sessions}} session(s), {{f2 .SessionsPerWeek}} per week, {{.Commands}} command(s); last activity {{time .LastActivity}}.</p>
<svg role="img" aria-label="Commands per week" width="240" height="40" viewBox="0 0 240 40"><rect width="240" height="40" fill="#f4f4f4"/>{{range chart . $since}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="#1f4e8c"><title>{{.Label}}</title></rect>{{end}}</svg>
<h3>Least privilege?</h3>
{{if .Grants}}<table><thead><tr><th scope="col">Grant</th><th scope="col">Effect</th><th scope="col">Via</th><th scope="col">Resources</th><th scope="col">Scope</th><th scope="col">Uses</th><th scope="col">Last use</th><th scope="col">Expires</th><th scope="col">Status</th></tr></thead><tbody>
{{range .Grants}}<tr><th scope="row"><code>{{.RuleID}}</code></th><td>{{.Effect}}</td><td>{{.Via}}</td><td>{{join .Resources ", "}}</td><td>{{.Scope}}</td><td>{{.Uses}}</td><td>{{time .LastUse}}</td><td>{{.Expires}}</td><td{{if eq .Uses 0}} class="unused"{{end}}>{{grantStatus .}}</td></tr>
{{end}}</tbody></table>{{else}}<p>No grants apply.</p>{{end}}
<h3>Used and provable?</h3>
{{if .Resources}}<table><thead><tr><th scope="col">Resource</th><th scope="col">Sessions</th><th scope="col">Commands</th><th scope="col">Denied</th><th scope="col">Statements</th><th scope="col">Tables</th></tr></thead><tbody>
{{range .Resources}}<tr><th scope="row">{{.Name}}</th><td>{{.Sessions}}</td><td>{{.Commands}}</td><td>{{.Denied}}</td><td>{{counts .Statements}}</td><td>{{counts .Tables}}</td></tr>
{{end}}</tbody></table>{{else}}<p>No resources touched.</p>{{end}}
<p>Masked reads: {{.MaskedReads}}. Denied attempts: {{.DeniedCount}}. Hash chains: {{chain .Chains}}.</p>
{{if .Approvals}}<table><caption>Approvals</caption><thead><tr><th scope="col">Approval</th><th scope="col">Status</th><th scope="col">Rule</th><th scope="col">Command</th><th scope="col">Votes</th></tr></thead><tbody>
{{range .Approvals}}<tr><th scope="row"><code>{{.ID}}</code></th><td>{{.Status}}</td><td>{{.RuleID}}</td><td><code>{{clip .Command 80}}</code></td><td>{{votes .}}</td></tr>
{{end}}</tbody></table>{{end}}
{{if .Denied}}<table><caption>Denied attempts</caption><thead><tr><th scope="col">Time</th><th scope="col">Resource</th><th scope="col">Rules</th><th scope="col">Command</th></tr></thead><tbody>
{{range .Denied}}<tr><td>{{time .Time}}</td><td>{{.Resource}}</td><td>{{join .RuleIDs ", "}}</td><td><code>{{clip .Command 80}}</code></td></tr>
{{end}}</tbody></table>{{end}}
</section>
{{end}}</body></html>
`))
