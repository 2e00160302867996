package lint

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// SARIF 2.1.0 document types: the subset Gatehouse emits. See
// https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html.

// SARIFVersion and SARIFSchema identify the emitted format.
const (
	SARIFVersion = "2.1.0"
	SARIFSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
)

// SARIFLog is a SARIF log file.
type SARIFLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []SARIFRun `json:"runs"`
}

// SARIFRun is one run of one tool.
type SARIFRun struct {
	Tool    SARIFTool     `json:"tool"`
	Results []SARIFResult `json:"results"`
}

// SARIFTool describes the tool.
type SARIFTool struct {
	Driver SARIFDriver `json:"driver"`
}

// SARIFDriver is the tool component that ran.
type SARIFDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri,omitempty"`
	Rules          []SARIFRule `json:"rules"`
}

// SARIFRule is a reporting descriptor for one finding code.
type SARIFRule struct {
	ID                   string            `json:"id"`
	Name                 string            `json:"name"`
	ShortDescription     SARIFText         `json:"shortDescription"`
	FullDescription      SARIFText         `json:"fullDescription"`
	Help                 SARIFHelp         `json:"help"`
	DefaultConfiguration SARIFRuleDefaults `json:"defaultConfiguration"`
}

// SARIFText is a plain-text message.
type SARIFText struct {
	Text string `json:"text"`
}

// SARIFHelp is help text in plain text and Markdown.
type SARIFHelp struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

// SARIFRuleDefaults holds a rule's default level.
type SARIFRuleDefaults struct {
	Level string `json:"level"`
}

// SARIFResult is one finding.
type SARIFResult struct {
	RuleID    string          `json:"ruleId"`
	RuleIndex int             `json:"ruleIndex"`
	Level     string          `json:"level"`
	Message   SARIFText       `json:"message"`
	Locations []SARIFLocation `json:"locations,omitempty"`
}

// SARIFLocation is where a result was found.
type SARIFLocation struct {
	PhysicalLocation SARIFPhysicalLocation `json:"physicalLocation"`
}

// SARIFPhysicalLocation is a file and a region in it.
type SARIFPhysicalLocation struct {
	ArtifactLocation SARIFArtifactLocation `json:"artifactLocation"`
	Region           *SARIFRegion          `json:"region,omitempty"`
}

// SARIFArtifactLocation names a file by URI.
type SARIFArtifactLocation struct {
	URI string `json:"uri"`
}

// SARIFRegion is a position in a file (1-based).
type SARIFRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn,omitempty"`
}

func sarifLevel(s Severity) string {
	switch s {
	case SeverityError:
		return "error"
	case SeverityWarning:
		return "warning"
	default:
		return "note"
	}
}

// NewSARIF builds the SARIF log for findings. Every finding code appears in
// tool.driver.rules, whether or not it was found, so rule indexes are
// stable.
func NewSARIF(fs Findings, tool Tool) SARIFLog {
	name := tool.Name
	if name == "" {
		name = "gatehouse"
	}
	driver := SARIFDriver{Name: name, Version: tool.Version, InformationURI: tool.InformationURI}
	index := make(map[Code]int, len(codes))
	for i, ci := range codes {
		index[ci.Code] = i
		driver.Rules = append(driver.Rules, SARIFRule{
			ID:                   string(ci.Code),
			Name:                 ci.Name,
			ShortDescription:     SARIFText{Text: ci.Summary},
			FullDescription:      SARIFText{Text: ci.Summary},
			Help:                 SARIFHelp{Text: ci.Help, Markdown: fmt.Sprintf("**%s %s**: %s\n\n%s", ci.Code, ci.Name, ci.Summary, ci.Help)},
			DefaultConfiguration: SARIFRuleDefaults{Level: sarifLevel(ci.Severity)},
		})
	}
	results := make([]SARIFResult, 0, len(fs))
	for _, f := range fs {
		idx, ok := index[f.Code]
		if !ok {
			// Unknown codes (not produced by Run) get an ad-hoc rule.
			idx = len(driver.Rules)
			index[f.Code] = idx
			driver.Rules = append(driver.Rules, SARIFRule{
				ID: string(f.Code), Name: string(f.Code),
				ShortDescription:     SARIFText{Text: string(f.Code)},
				FullDescription:      SARIFText{Text: string(f.Code)},
				Help:                 SARIFHelp{Text: "See docs/lint.md."},
				DefaultConfiguration: SARIFRuleDefaults{Level: sarifLevel(f.Severity)},
			})
		}
		res := SARIFResult{
			RuleID:    string(f.Code),
			RuleIndex: idx,
			Level:     sarifLevel(f.Severity),
			Message:   SARIFText{Text: f.Message},
		}
		if loc := f.Location(); loc.File != "" {
			pl := SARIFPhysicalLocation{ArtifactLocation: SARIFArtifactLocation{URI: artifactURI(tool.URIPrefix, loc.File)}}
			if loc.Line > 0 {
				pl.Region = &SARIFRegion{StartLine: loc.Line, StartColumn: loc.Col}
			}
			res.Locations = []SARIFLocation{{PhysicalLocation: pl}}
		}
		results = append(results, res)
	}
	return SARIFLog{
		Schema:  SARIFSchema,
		Version: SARIFVersion,
		Runs:    []SARIFRun{{Tool: SARIFTool{Driver: driver}, Results: results}},
	}
}

// artifactURI turns a file name into a relative URI reference.
func artifactURI(prefix, file string) string {
	p := strings.TrimPrefix(strings.ReplaceAll(prefix+file, `\`, "/"), "./")
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// WriteSARIF writes findings as a SARIF 2.1.0 log.
func WriteSARIF(w io.Writer, fs Findings, tool Tool) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(NewSARIF(fs, tool)); err != nil {
		return fmt.Errorf("write sarif: %w", err)
	}
	return nil
}
