package funclist

import (
	"slices"
	"strings"
	"testing"
)

func TestBuild(t *testing.T) {
	t.Parallel()
	procs := []Proc{
		{Name: "lower", Volatility: "i", Kind: "f"},
		{Name: "now", Volatility: "s", Kind: "f"},
		{Name: "count", Volatility: "i", Kind: "a"},
		{Name: "mixed", Volatility: "i", Kind: "f"},
		{Name: "mixed", Volatility: "v", Kind: "f"},
		{Name: "int4recv", Volatility: "i", Kind: "f", TakesInternal: true},
		{Name: "half", Volatility: "i", Kind: "f", TakesInternal: true},
		{Name: "half", Volatility: "i", Kind: "f"},
		{Name: "table_to_xml", Volatility: "s", Kind: "f"},
		{Name: "pg_stat_get_activity", Volatility: "s", Kind: "f"},
		{Name: "random", Volatility: "v", Kind: "f"},
		{Name: "proc", Volatility: "i", Kind: "p"},
	}
	got := Build(procs)
	want := []string{"count", "half", "lower", "now", "random"}
	if !slices.Equal(got, want) {
		t.Fatalf("Build = %v, want %v", got, want)
	}
	out := string(Render(got, "PostgreSQL 15"))
	if !strings.HasPrefix(out, "# ") || !strings.HasSuffix(out, "now\nrandom\n") {
		t.Fatalf("Render = %q", out)
	}
}

func TestEntries(t *testing.T) {
	t.Parallel()
	if e, ok := ExcludedEntry("pg_stat_get_backend_activity"); !ok || e.Name != "pg_stat_*" {
		t.Errorf("prefix entry not matched: %v %v", e, ok)
	}
	if _, ok := ExcludedEntry("pg_statistics_obj_is_visible"); ok {
		t.Error("pg_stat_* matched pg_statistics_obj_is_visible")
	}
	if _, ok := ExcludedEntry("lower"); ok {
		t.Error("lower excluded")
	}
	seen := map[string]bool{}
	for _, e := range append(append([]Entry(nil), Excluded...), Curated...) {
		if e.Reason == "" || e.Name == "" || seen[e.Name] {
			t.Errorf("entry %+v empty or duplicate", e)
		}
		seen[e.Name] = true
		if _, ok := CuratedEntry(e.Name); ok {
			if _, ex := ExcludedEntry(e.Name); ex {
				t.Errorf("%s both curated and excluded", e.Name)
			}
		}
	}
}
