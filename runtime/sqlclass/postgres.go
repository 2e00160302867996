package sqlclass

import (
	"errors"
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pganalyze/pg_query_go/v6/parser"
)

// DefaultMaxQueryBytes bounds the query text Postgres accepts by default.
const DefaultMaxQueryBytes = 1 << 20

// MaxDepth bounds how deeply the classifier follows the parse tree.
const MaxDepth = 1000

// MaxNestingLimit is the largest MaxNesting Validate accepts: a quarter of
// the smallest measured crash depth with 8 MiB thread stacks (see
// DefaultMaxNesting).
const MaxNestingLimit = 2700

// PostgresConfig configures a Postgres classifier.
type PostgresConfig struct {
	// MaxQueryBytes bounds the length of a query string; longer input is
	// rejected with ErrTooLarge. Zero means DefaultMaxQueryBytes.
	MaxQueryBytes int
	// MaxNesting bounds the estimated parse-tree depth of a query string
	// (see DefaultMaxNesting); deeper input is rejected with a
	// *NestingError (ErrTooComplex) before it reaches the C parser. Zero
	// means DefaultMaxNesting; at most MaxNestingLimit.
	MaxNesting int
}

// Validate checks the configuration and fills defaults.
func (c *PostgresConfig) Validate() error {
	if c.MaxQueryBytes < 0 {
		return fmt.Errorf("sqlclass: max query bytes %d: must not be negative", c.MaxQueryBytes)
	}
	if c.MaxQueryBytes == 0 {
		c.MaxQueryBytes = DefaultMaxQueryBytes
	}
	if c.MaxNesting < 0 || c.MaxNesting > MaxNestingLimit {
		return fmt.Errorf("sqlclass: max nesting %d: must be between 0 and %d", c.MaxNesting, MaxNestingLimit)
	}
	if c.MaxNesting == 0 {
		c.MaxNesting = DefaultMaxNesting
	}
	return nil
}

// Postgres classifies PostgreSQL statements with the PostgreSQL parser. It
// is safe for concurrent use and holds no state besides its configuration.
type Postgres struct {
	maxBytes   int
	maxNesting int
}

var _ Classifier = (*Postgres)(nil)

// NewPostgres returns a PostgreSQL classifier.
func NewPostgres(cfg PostgresConfig) (*Postgres, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Postgres{maxBytes: cfg.MaxQueryBytes, maxNesting: cfg.MaxNesting}, nil
}

// Classify implements Classifier.
func (p *Postgres) Classify(sql string) ([]Statement, error) {
	if len(sql) > p.maxBytes {
		return nil, fmt.Errorf("classify: %d bytes, limit %d: %w", len(sql), p.maxBytes, ErrTooLarge)
	}
	if i := strings.IndexByte(sql, 0); i >= 0 {
		// The parser reads a C string; a NUL would hide the rest of the text.
		return nil, &ParseError{Message: "query contains a NUL byte", Position: i + 1}
	}
	// Bounded before parsing: libpg_query recurses in C on the thread's
	// stack, where an overflow kills the process.
	if err := checkNesting(sql, p.maxNesting); err != nil {
		return nil, err
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		var pe *parser.Error
		if errors.As(err, &pe) {
			return nil, &ParseError{Message: pe.Message, Position: pe.Cursorpos}
		}
		return nil, &ParseError{Message: err.Error()}
	}
	stmts := tree.GetStmts()
	out := make([]Statement, 0, len(stmts))
	for _, raw := range stmts {
		text := stmtText(sql, raw)
		st, err := classifyNode(raw.GetStmt(), text)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// normalize implements normalizer: plain texts go through quickNormalize
// (in Go, well under a microsecond), the rest through the PostgreSQL
// lexer's own constant replacement (pg_query's Normalize: a call into C of
// a few microseconds, a fraction of a parse and classification).
func (p *Postgres) normalize(sql string) (string, bool) {
	if len(sql) > p.maxBytes || strings.IndexByte(sql, 0) >= 0 {
		return "", false
	}
	// The two kinds of key differ in their first byte, so a key from one
	// can never equal a key from the other.
	if n, ok := quickNormalize(sql); ok {
		return "g" + n, true
	}
	// Normalize walks the parse tree recursively in C: bounded first, as
	// in Classify.
	if nestingBound(sql, p.maxNesting) > p.maxNesting {
		return "", false
	}
	n, err := pg_query.Normalize(sql)
	if err != nil {
		return "", false
	}
	return "p" + n, true
}

// stmtText cuts a statement's own text from the query, guarding against
// out-of-range locations.
func stmtText(sql string, raw *pg_query.RawStmt) string {
	start := int(raw.GetStmtLocation())
	if start < 0 || start > len(sql) {
		start = 0
	}
	end := len(sql)
	if n := int(raw.GetStmtLen()); n > 0 && start+n <= len(sql) {
		end = start + n
	}
	return strings.TrimSpace(sql[start:end])
}
