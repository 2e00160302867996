package lint

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

var sampleFindings = Findings{
	{Pos: "rules.cue:3:5", Code: CodeAgentWrite, Severity: SeverityError, Message: "rule \"a\" allows writes", RuleID: "a"},
	{Pos: "dir, x/rules.cue:9:1", Code: CodeNoExpiry, Severity: SeverityWarning, Message: "100% bad\nsecond line", RuleID: "b"},
	{Code: CodeEmptyScope, Severity: SeverityInfo, Message: "no position"},
}

func TestWriteText(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteText(&b, sampleFindings); err != nil {
		t.Fatal(err)
	}
	want := "rules.cue:3:5: error GH030: rule \"a\" allows writes\n" +
		"dir, x/rules.cue:9:1: warning GH020: 100% bad second line\n" +
		"info GH007: no position\n"
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWriteGitHub(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteGitHub(&b, sampleFindings); err != nil {
		t.Fatal(err)
	}
	want := "::error file=rules.cue,line=3,col=5,title=GH030::rule \"a\" allows writes\n" +
		"::warning file=dir%2C x/rules.cue,line=9,col=1,title=GH020::100%25 bad%0Asecond line\n" +
		"::notice title=GH007::no position\n"
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteJSON(&b, sampleFindings); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Findings []struct {
			Pos, Code, Severity, Message, File string
			RuleID                             string `json:"rule_id"`
			Line, Col                          int
		}
		Summary struct{ Errors, Warnings, Info int }
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Findings) != 3 || got.Summary.Errors != 1 || got.Summary.Warnings != 1 || got.Summary.Info != 1 {
		t.Fatalf("unexpected document: %s", b.String())
	}
	f := got.Findings[0]
	if f.File != "rules.cue" || f.Line != 3 || f.Col != 5 || f.Code != "GH030" || f.RuleID != "a" || f.Severity != "error" {
		t.Fatalf("first finding: %+v", f)
	}
}

// TestWriteSARIF checks the SARIF 2.1.0 properties that consumers such as
// code scanning require, on the generic JSON document rather than on the
// Go types.
func TestWriteSARIF(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteSARIF(&b, sampleFindings, Tool{Version: "1.2.3", URIPrefix: "policies/"}); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["version"] != "2.1.0" || doc["$schema"] == nil {
		t.Fatalf("version/schema: %v %v", doc["version"], doc["$schema"])
	}
	runs := doc["runs"].([]any)
	if len(runs) != 1 {
		t.Fatalf("runs: %d", len(runs))
	}
	run := runs[0].(map[string]any)
	driver := run["tool"].(map[string]any)["driver"].(map[string]any)
	if driver["name"] != "gatehouse" || driver["version"] != "1.2.3" {
		t.Fatalf("driver: %v", driver)
	}
	rules := driver["rules"].([]any)
	ids := map[string]int{}
	for i, r := range rules {
		rm := r.(map[string]any)
		id, _ := rm["id"].(string)
		help, _ := rm["help"].(map[string]any)
		short, _ := rm["shortDescription"].(map[string]any)
		if id == "" || help == nil || help["text"] == "" || short == nil || short["text"] == "" {
			t.Errorf("rule %d incomplete: %v", i, rm)
		}
		ids[id] = i
	}
	if len(ids) != len(Codes()) {
		t.Errorf("%d rules, want %d", len(ids), len(Codes()))
	}
	results := run["results"].([]any)
	if len(results) != len(sampleFindings) {
		t.Fatalf("results: %d", len(results))
	}
	levels := map[string]bool{"error": true, "warning": true, "note": true, "none": true}
	for i, r := range results {
		rm := r.(map[string]any)
		id := rm["ruleId"].(string)
		if idx, ok := ids[id]; !ok || int(rm["ruleIndex"].(float64)) != idx {
			t.Errorf("result %d: ruleId %q / ruleIndex %v do not match driver rules", i, id, rm["ruleIndex"])
		}
		if !levels[rm["level"].(string)] {
			t.Errorf("result %d: level %v", i, rm["level"])
		}
		if msg := rm["message"].(map[string]any)["text"]; msg == "" {
			t.Errorf("result %d: empty message", i)
		}
		locs, _ := rm["locations"].([]any)
		if sampleFindings[i].Pos == "" {
			if len(locs) != 0 {
				t.Errorf("result %d: location without position", i)
			}
			continue
		}
		pl := locs[0].(map[string]any)["physicalLocation"].(map[string]any)
		uri := pl["artifactLocation"].(map[string]any)["uri"].(string)
		region := pl["region"].(map[string]any)
		if region["startLine"].(float64) < 1 || region["startColumn"].(float64) < 1 {
			t.Errorf("result %d: region %v", i, region)
		}
		if !strings.HasPrefix(uri, "policies/") || strings.ContainsAny(uri, " ,") {
			t.Errorf("result %d: uri %q", i, uri)
		}
	}
}

func TestWriteUnknownFormat(t *testing.T) {
	t.Parallel()
	err := Write(&bytes.Buffer{}, "xml", nil, Tool{})
	if !errors.Is(err, ErrUnknownFormat) {
		t.Fatalf("err = %v, want ErrUnknownFormat", err)
	}
	for _, f := range Formats {
		if err := Write(&bytes.Buffer{}, f, sampleFindings, Tool{}); err != nil {
			t.Errorf("format %s: %v", f, err)
		}
	}
}
