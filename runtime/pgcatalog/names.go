package pgcatalog

import (
	"strings"
	"unicode/utf8"
)

// maxIdentLen is NAMEDATALEN-1: PostgreSQL truncates longer identifiers
// to this many bytes (at a character boundary) and stores them so.
const maxIdentLen = 63

// truncateIdent cuts s as PostgreSQL's truncate_identifier does for a UTF-8
// database: to at most 63 bytes without splitting a character.
func truncateIdent(s string) string {
	if len(s) <= maxIdentLen {
		return s
	}
	n := maxIdentLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// splitName splits a name as the classifier writes it, "name",
// "schema.name" or "catalog.schema.name" (the catalog must be the current
// database, so it does not change the resolution), and truncates each part
// as PostgreSQL does. ok is false for names PostgreSQL would reject.
func splitName(s string) (schema, name string, ok bool) {
	if s == "" {
		return "", "", false
	}
	first := strings.IndexByte(s, '.')
	if first < 0 {
		return "", truncateIdent(s), true
	}
	rest := s[first+1:]
	second := strings.IndexByte(rest, '.')
	if second < 0 {
		schema, name = s[:first], rest
	} else {
		if strings.IndexByte(rest[second+1:], '.') >= 0 || first == 0 {
			return "", "", false
		}
		schema, name = rest[:second], rest[second+1:]
	}
	if schema == "" || name == "" {
		return "", "", false
	}
	return truncateIdent(schema), truncateIdent(name), true
}

// splitOperator splits "schema.op" at its last dot: operator symbols never
// contain one, schema names may.
func splitOperator(s string) (schema, name string, ok bool) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return "", s, s != ""
	}
	schema, name = s[:i], s[i+1:]
	if schema == "" || name == "" {
		return "", "", false
	}
	if j := strings.LastIndexByte(schema, '.'); j >= 0 { // catalog.schema
		schema = schema[j+1:]
	}
	return truncateIdent(schema), name, schema != ""
}

// typeAliases maps the SQL-standard spellings the grammar turns into
// pg_catalog types to those types' catalog names.
var typeAliases = map[string]string{
	"int": "int4", "integer": "int4", "smallint": "int2", "bigint": "int8",
	"real": "float4", "float": "float8", "double precision": "float8",
	"boolean": "bool", "decimal": "numeric", "dec": "numeric",
	"character varying": "varchar", "char varying": "varchar",
	"character": "bpchar", "char": "bpchar", "nchar": "bpchar", "national character": "bpchar",
	"timestamp without time zone": "timestamp", "timestamp with time zone": "timestamptz",
	"time without time zone": "time", "time with time zone": "timetz",
	"bit varying": "varbit",
}

// typeName reduces a type as written ("varchar(10)[]", "public.mytype",
// "double precision") to the name a cast is looked up by: without type
// modifiers and array bounds (a cast to an array type applies the element
// type's cast to each element), with SQL-standard spellings mapped to
// catalog names. alias is that catalog name (in pg_catalog) when the
// spelling is one the grammar maps there; schema and name are the spelling
// itself, which a quoted identifier could make a user type's name.
func typeName(written string) (schema, name, alias string, ok bool) {
	s := written
	// Drop parenthesised modifiers wherever they stand ("timestamp(3)
	// with time zone") and array brackets.
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '(' || c == '[':
			depth++
		case c == ')' || c == ']':
			if depth > 0 {
				depth--
			}
		case depth == 0:
			b.WriteByte(c)
		}
	}
	s = strings.Join(strings.Fields(b.String()), " ")
	s = strings.TrimSuffix(s, " array") // "int array"
	alias = typeAliases[s]
	schema, name, ok = splitName(s)
	return schema, name, alias, ok
}
