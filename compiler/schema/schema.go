package schema

import _ "embed"

// CUE is the source text of the policy schema (package schema).
//
//go:embed schema.cue
var CUE string

// ImportPath is the CUE import path of the schema package.
const ImportPath = "github.com/gatehouse/gatehouse/compiler/schema"
