package lint

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Format names an output format.
type Format string

// Output formats.
const (
	FormatText   Format = "text"
	FormatJSON   Format = "json"
	FormatSARIF  Format = "sarif"
	FormatGitHub Format = "github"
)

// Formats lists the supported output formats.
var Formats = []Format{FormatText, FormatJSON, FormatSARIF, FormatGitHub}

// ErrUnknownFormat is returned by [Write] for an unsupported format.
var ErrUnknownFormat = errors.New("unknown output format")

// Tool identifies the program that produced findings (for SARIF).
type Tool struct {
	Name    string // "gatehouse" when empty
	Version string
	// InformationURI is the tool's home page (optional).
	InformationURI string
	// URIPrefix is prepended to finding file names to make artifact URIs
	// relative to the repository root (e.g. "policies/").
	URIPrefix string
}

// Write renders findings in the given format.
func Write(w io.Writer, format Format, fs Findings, tool Tool) error {
	switch format {
	case FormatText:
		return WriteText(w, fs)
	case FormatJSON:
		return WriteJSON(w, fs)
	case FormatSARIF:
		return WriteSARIF(w, fs, tool)
	case FormatGitHub:
		return WriteGitHub(w, fs)
	}
	return fmt.Errorf("%w %q (want text, json, sarif or github)", ErrUnknownFormat, format)
}

// WriteText writes one line per finding, "file:line:col: severity code:
// message", followed by nothing else. Findings without a position omit the
// position prefix.
func WriteText(w io.Writer, fs Findings) error {
	var b strings.Builder
	for _, f := range fs {
		if f.Pos != "" {
			b.WriteString(f.Pos)
			b.WriteString(": ")
		}
		fmt.Fprintf(&b, "%s %s: %s\n", f.Severity, f.Code, oneLine(f.Message))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

// jsonReport is the JSON output document.
type jsonReport struct {
	Findings []jsonFinding `json:"findings"`
	Summary  jsonSummary   `json:"summary"`
}

type jsonFinding struct {
	Finding
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
}

type jsonSummary struct {
	Errors   int `json:"errors"`
	Warnings int `json:"warnings"`
	Info     int `json:"info"`
}

// WriteJSON writes {"findings": [...], "summary": {...}}; each finding has
// pos, code, severity, message, rule_id and the parsed file, line, col.
func WriteJSON(w io.Writer, fs Findings) error {
	rep := jsonReport{
		Findings: make([]jsonFinding, 0, len(fs)),
		Summary: jsonSummary{
			Errors:   fs.Count(SeverityError),
			Warnings: fs.Count(SeverityWarning),
			Info:     fs.Count(SeverityInfo),
		},
	}
	for _, f := range fs {
		loc := f.Location()
		rep.Findings = append(rep.Findings, jsonFinding{Finding: f, File: loc.File, Line: loc.Line, Col: loc.Col})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("write json findings: %w", err)
	}
	return nil
}

// WriteGitHub writes GitHub Actions workflow commands
// ("::error file=F,line=L,col=C,title=CODE::message"), one per finding.
func WriteGitHub(w io.Writer, fs Findings) error {
	var b strings.Builder
	for _, f := range fs {
		cmd := "notice"
		switch f.Severity {
		case SeverityError:
			cmd = "error"
		case SeverityWarning:
			cmd = "warning"
		}
		var props []string
		loc := f.Location()
		if loc.File != "" {
			props = append(props, "file="+ghProperty(loc.File))
		}
		if loc.Line > 0 {
			props = append(props, fmt.Sprintf("line=%d", loc.Line))
		}
		if loc.Col > 0 {
			props = append(props, fmt.Sprintf("col=%d", loc.Col))
		}
		props = append(props, "title="+ghProperty(string(f.Code)))
		fmt.Fprintf(&b, "::%s %s::%s\n", cmd, strings.Join(props, ","), ghData(f.Message))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ghData escapes a workflow command message.
func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// ghProperty escapes a workflow command property value.
func ghProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
