package review

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// SuggestOptions tune Suggest.
type SuggestOptions struct {
	// Expires is the expiry written into the suggested rules ("" = none).
	Expires string
	// ReviewOwner and ReviewEvery give the rules a review schedule; the
	// owner defaults to the identity's owner, the interval to "90d".
	ReviewOwner, ReviewEvery string
}

var ruleIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.:-]+`)

// Suggest proposes least-privilege rules for one reviewed identity: for
// each resource and granting effect, a rule that names exactly the
// statement kinds and tables the identity used in the period, with the
// evidence as comments. The result is a CUE snippet of the policy
// language: a "rules" list (and no package clause), to be placed in a file
// of the policy package. Only SQL resources get rules; other use is listed
// as comments. An identity that used nothing gets a snippet with an empty
// list and a comment saying so.
func Suggest(id *Identity, rep *Report, opts SuggestOptions) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Least-privilege rules for %s, from the recorded use between %s and %s.\n",
		id.Name, rep.Since.Format(time.DateOnly), rep.Until.Format(time.DateOnly))
	if opts.ReviewOwner == "" {
		opts.ReviewOwner = id.Owner
	}
	if opts.ReviewEvery == "" {
		opts.ReviewEvery = "90d"
	}
	var unused []string
	for _, g := range id.Grants {
		if g.Uses == 0 {
			unused = append(unused, g.RuleID)
		}
	}
	if len(unused) > 0 {
		fmt.Fprintf(&b, "// Unused grants, not carried over: %s.\n", strings.Join(unused, ", "))
	}
	if len(id.Access) == 0 {
		b.WriteString("// No command ran through a grant in the period: nothing to keep.\n")
		b.WriteString("rules: []\n")
		return b.String()
	}
	b.WriteString("rules: [\n")
	for _, ac := range id.Access {
		fmt.Fprintf(&b, "\t// %s (%s): %d command(s) through %s, first %s, last %s.\n",
			ac.Resource, ac.Type, ac.Commands, strings.Join(ac.RuleIDs, ", "),
			ac.First.Format(time.RFC3339), ac.Last.Format(time.RFC3339))
		if ac.Type != string(bundle.ResourcePostgres) && ac.Type != string(bundle.ResourceMySQL) {
			b.WriteString("\t// Not a SQL resource: keep the existing rule or narrow it by hand.\n")
			continue
		}
		var kinds, tables []string
		for _, c := range ac.Statements {
			fmt.Fprintf(&b, "\t//   %s: %d\n", c.Name, c.Count)
			kinds = append(kinds, c.Name)
		}
		for _, c := range ac.Tables {
			fmt.Fprintf(&b, "\t//   table %s: %d\n", c.Name, c.Count)
			tables = append(tables, c.Name)
		}
		if len(kinds) == 0 {
			b.WriteString("\t// No classified statements: nothing to suggest for this resource.\n")
			continue
		}
		slices.Sort(kinds)
		slices.Sort(tables)
		ruleID := ruleIDUnsafe.ReplaceAllString(fmt.Sprintf("%s-%s-%s-least-privilege", id.Name, ac.Resource, ac.Effect), "-")
		b.WriteString("\t{\n")
		field(&b, "id", quote(ruleID))
		field(&b, "description", quote(fmt.Sprintf("What %s used on %s in the review period", id.Name, ac.Resource)))
		field(&b, "subjects", list([]string{id.Name}))
		field(&b, "resources", list([]string{ac.Resource}))
		field(&b, "effect", quote(ac.Effect))
		sql := "statements: " + list(kinds)
		if len(tables) > 0 {
			sql += ", tables: " + list(tables)
		}
		field(&b, "sql", "{"+sql+"}")
		if ac.Approval != nil {
			ap := fmt.Sprintf("{group: %s, count: %d", quote(ac.Approval.Group), ac.Approval.Count)
			if ac.Approval.Timeout != "" {
				ap += ", timeout: " + quote(ac.Approval.Timeout)
			}
			field(&b, "approval", ap+"}")
		}
		if opts.Expires != "" {
			field(&b, "expires", quote(opts.Expires))
		}
		if opts.ReviewOwner != "" {
			field(&b, "review", fmt.Sprintf("{owner: %s, every: %s}", quote(opts.ReviewOwner), quote(opts.ReviewEvery)))
		}
		b.WriteString("\t},\n")
	}
	b.WriteString("]\n")
	return b.String()
}

func field(b *bytes.Buffer, name, value string) {
	fmt.Fprintf(b, "\t\t%s: %s\n", name, value)
}

// quote writes a string literal valid in CUE (a JSON string is one).
func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

func list(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
