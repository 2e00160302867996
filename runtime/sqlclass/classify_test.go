package sqlclass

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/classify")

// goldenCase is one entry of a testdata/classify/*.json file.
type goldenCase struct {
	Name       string      `json:"name"`
	Input      string      `json:"input"`
	Statements []Statement `json:"statements"`
	Error      string      `json:"error,omitempty"`
}

// readCases splits a .sql file into cases. Each case starts with a line
// "-- case: NAME"; its input is the text up to the next such line.
func readCases(t *testing.T, path string) []goldenCase {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if name, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "-- case: "); ok {
			cases = append(cases, goldenCase{Name: strings.TrimSpace(name)})
			continue
		}
		if len(cases) == 0 {
			continue
		}
		cases[len(cases)-1].Input += line
	}
	for i := range cases {
		cases[i].Input = strings.TrimSpace(cases[i].Input)
	}
	return cases
}

func TestClassifyGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/classify/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden inputs in testdata/classify")
	}
	p, err := NewPostgres(PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, file := range files {
		cases := readCases(t, file)
		total += len(cases)
		got := make([]goldenCase, len(cases))
		for i, c := range cases {
			got[i] = c
			stmts, err := p.Classify(c.Input)
			if err != nil {
				if !errors.Is(err, ErrUnparseable) {
					t.Errorf("%s: %s: error %v does not wrap ErrUnparseable", file, c.Name, err)
				}
				got[i].Error = err.Error()
				continue
			}
			if stmts == nil {
				stmts = []Statement{}
			}
			got[i].Statements = stmts
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(got); err != nil {
			t.Fatal(err)
		}
		golden := strings.TrimSuffix(file, ".sql") + ".json"
		if *update {
			if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		var wantCases []goldenCase
		if err := json.Unmarshal(want, &wantCases); err != nil {
			t.Fatalf("%s: %v", golden, err)
		}
		if len(wantCases) != len(got) {
			t.Errorf("%s: %d cases, golden has %d (run go test -update)", file, len(got), len(wantCases))
			continue
		}
		for i := range got {
			g, _ := json.MarshalIndent(got[i], "", "  ")
			w, _ := json.MarshalIndent(wantCases[i], "", "  ")
			if !bytes.Equal(g, w) {
				t.Errorf("%s: case %q:\ngot:\n%s\nwant:\n%s", file, got[i].Name, g, w)
			}
		}
	}
	if total < 80 {
		t.Errorf("only %d golden cases, want at least 80", total)
	}
}

func TestClassifyErrors(t *testing.T) {
	t.Parallel()
	p, err := NewPostgres(PostgresConfig{MaxQueryBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		sql  string
		want error
		pos  int
	}{
		{name: "syntax", sql: "SELECT * FRM t", want: ErrUnparseable, pos: 10},
		{name: "nul byte", sql: "SELECT 1;\x00DROP TABLE t", want: ErrUnparseable, pos: 10},
		{name: "too large", sql: "SELECT '" + string(make([]byte, 200)) + "'", want: ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			st, err := p.Classify(c.sql)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if st != nil {
				t.Fatalf("statements with error: %v", st)
			}
			var pe *ParseError
			if c.pos > 0 && (!errors.As(err, &pe) || pe.Position != c.pos) {
				t.Fatalf("err = %#v, want position %d", err, c.pos)
			}
		})
	}
	if _, err := NewPostgres(PostgresConfig{MaxQueryBytes: -1}); err == nil {
		t.Fatal("negative MaxQueryBytes accepted")
	}
}
