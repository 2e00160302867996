package sqlclass

import "fmt"

// DefaultMaxNesting is the default bound on the parse-tree depth that
// nestingBound may estimate for a text before it is handed to libpg_query.
//
// Why a bound at all: libpg_query turns the parse tree into protobuf, and
// normalises it, with recursive C functions that run on the calling
// thread's stack (a cgo call runs on the thread, not on a growable
// goroutine stack, and no Go recover can catch a C stack overflow). Bison
// itself stops right-nested input at 10000 parser stack entries ("memory
// exhausted"), but left-deep chains such as 1+1+...+1 are reduced as they
// are read and build trees of any depth. Measured crash thresholds
// (libpg_query 17-6.2.5 from pg_query_go v6.2.5, x86-64, glibc, thread
// stacks of 8 MiB from ulimit -s 8192; repetitions of the construct at
// which the process died, to 1%):
//
//	construct                      Parse (protobuf out)  Normalize (C walker)
//	1+1+...+1, 'a'||'a'..., x->'a'->'a'...,
//	x OPERATOR(pg_catalog.+) 1 ...      23,750-23,875        21,750-21,875
//	x::int::int...                      23,750-23,875        21,750-21,875
//	x COLLATE "C" COLLATE "C" ...       23,750-23,875        26,000-26,250
//	x AT TIME ZONE 'UTC' AT ...         23,750-23,875        10,875-10,937
//	t JOIN t ON true JOIN ...           23,750-23,875        21,750-21,875
//	SELECT 1 UNION SELECT 1 UNION ...   47,500-47,750        26,000-26,250
//	- - - x, NOT NOT x                  error at 10,000 (bison "memory exhausted")
//	((((1)))) nested parentheses        error at 10,000
//	f(f(f(1))), ARRAY[ARRAY[...]]       error at 5,000
//	(SELECT (SELECT ...))               error at 3,343
//	CASE WHEN true THEN CASE ... END    error at 2,000
//	a BETWEEN b AND NOT a BETWEEN ...   error at 1,671
//	x OR x OR ..., x IN (1, 2, ...)     flat lists: no failure up to 256,000
//
// Each repetition adds one tree level in every chain above, so the
// smallest crash is 10,875 levels (AT TIME ZONE under Normalize: a FuncCall
// per level, the largest C frames per level). Thresholds scale with the
// stack: with ulimit -s 2048, or with ulimit -s unlimited (glibc then gives
// new threads 2 MiB), the same chain crashes at 2,718. Threads the Go
// runtime creates for cgo use the C library's default thread stack size
// (pthread_attr_getstacksize on a fresh attribute, runtime/cgo); with glibc
// that is the soft RLIMIT_STACK when it is finite, else 2 MiB. The default
// of 600 is 18x below the smallest crash at 8 MiB and 4.5x below it at
// 2 MiB. Stacks smaller than 2 MiB (musl's 128 KiB default) are not
// supported.
//
// A statement whose estimate exceeds the bound is rejected with
// ErrTooComplex; the estimate is an upper bound, so legitimate statements
// with a real depth well below the bound may be rejected only when they
// hold hundreds of unbracketed operators in one expression or dozens of
// nested subqueries.
const DefaultMaxNesting = 600

// NestingError reports a text whose estimated parse-tree depth exceeds the
// bound. It wraps ErrTooComplex.
type NestingError struct {
	// Estimate is nestingBound's estimate (an upper bound on the depth),
	// or, when the text opens more groups than the bound, a lower bound on
	// that estimate.
	Estimate int
	// Limit is the configured bound.
	Limit int
}

func (e *NestingError) Error() string {
	return fmt.Sprintf("SQL statement too deeply nested: estimated parse-tree depth %d, limit %d", e.Estimate, e.Limit)
}

// Unwrap makes errors.Is(err, ErrTooComplex) true.
func (e *NestingError) Unwrap() error { return ErrTooComplex }

// CheckNesting returns a *NestingError if libpg_query could build a parse
// tree deeper than limit levels for sql (limit <= 0 means
// DefaultMaxNesting, and limits above MaxNestingLimit are lowered to it).
// Classify and the Cache call it themselves; any other code that hands
// untrusted text to pg_query (Parse, Normalize, Fingerprint, ...) must
// call it first. It runs in linear time and does not allocate.
func CheckNesting(sql string, limit int) error {
	if limit <= 0 {
		limit = DefaultMaxNesting
	}
	return checkNesting(sql, min(limit, MaxNestingLimit))
}

// checkNesting returns a *NestingError when the text's estimated depth
// exceeds limit.
func checkNesting(sql string, limit int) error {
	if est := nestingBound(sql, limit); est > limit {
		return &NestingError{Estimate: est, Limit: limit}
	}
	return nil
}

// Constant parts of the bound, in tree levels (messages of the protobuf
// parse tree, not counting the Node wrapper, which has no C counterpart).
const (
	// nestStmt covers the structure between the root of a statement of
	// the whole text (or of a BEGIN ATOMIC body) and the expressions and
	// FROM items in it: RawStmt; ExplainStmt, CreateTableAsStmt, IntoClause
	// or CreateSchemaStmt or RuleStmt around an embedded statement; then
	// what nestSubquery covers; or DDL structure such as AlterTableStmt,
	// AlterTableCmd, ColumnDef, Constraint, or CreatePublicationStmt,
	// PublicationObjSpec, PublicationTable.
	nestStmt = 16
	// nestSubquery covers the same for a statement in parentheses (a
	// subquery, CTE body, COPY query or rule action), which cannot wrap
	// another statement: InsertStmt, OnConflictClause, ResTarget,
	// MultiAssignRef; MergeStmt, MergeWhenClause, ResTarget,
	// MultiAssignRef; SelectStmt, RangeFunction, two List levels and a
	// column definition list (ColumnDef, TypeName, names), less the
	// nestLeaf counted below it.
	nestSubquery = 10
	// nestParen covers the nodes a parenthesised group adds above its
	// contents: FuncCall, SubLink, RowExpr, the List of IN, WindowDef,
	// SortBy, JSON constructor and JSON_TABLE wrappers (JsonArrayAgg,
	// JsonAggConstructor, WindowDef, SortBy above an OVER clause's
	// expression is the deepest: 5).
	nestParen = 6
	// nestBracket covers A_Indirection and A_Indices, or A_ArrayExpr.
	nestBracket = 3
	// nestCase covers CaseExpr and CaseWhen.
	nestCase = 3
	// nestAtomic covers the two List levels of a BEGIN ATOMIC body.
	nestAtomic = 4
	// nestLeaf covers what hangs below the last counted node: ColumnRef
	// and its String fields, A_Const and its value, TypeCast, TypeName and
	// its typmods (interval '1' day), CollateClause names, RangeVar.
	nestLeaf = 5
)

type nestKind uint8

const (
	nestTop nestKind = iota
	nestParenKind
	nestBracketKind
	nestCaseKind
	nestAtomicKind
)

// nestFrame is one open group: the whole text, a parenthesis, a bracket, a
// CASE ... END or a BEGIN ATOMIC ... END.
type nestFrame struct {
	kind nestKind
	// stmt: the group holds statements (the whole text, BEGIN ATOMIC, or a
	// parenthesis whose first word is a statement keyword).
	stmt bool
	// atStart: no token yet since the group opened or since the last ';'.
	atStart bool
	// between counts BETWEENs waiting for their AND.
	between int
	// setops counts UNION/INTERSECT/EXCEPT in the current statement.
	setops int
	// joins counts JOIN in the current comma-separated element.
	joins int
	// ops counts depth-adding tokens in the current segment, child is the
	// largest bound of a group closed in it.
	ops, child int
	// elemMax, listMax and stmtMax are the largest values of the closed
	// segments of the element, elements of the statement, statements.
	elemMax, listMax, stmtMax int
}

// endSegment closes the current segment (at OR, AND, WHEN, THEN, ELSE).
func (f *nestFrame) endSegment() {
	v := f.ops + max(f.child, nestLeaf)
	f.elemMax = max(f.elemMax, v)
	f.ops, f.child = 0, 0
}

// endElement closes the current comma-separated element.
func (f *nestFrame) endElement() {
	f.endSegment()
	f.listMax = max(f.listMax, f.joins+f.elemMax)
	f.joins, f.elemMax, f.between = 0, 0, 0
}

// endStatement closes the current statement (at ';').
func (f *nestFrame) endStatement() {
	f.endElement()
	f.stmtMax = max(f.stmtMax, f.setops+f.listMax)
	f.setops, f.listMax = 0, 0
	f.atStart = true
}

// value closes the frame and returns its bound.
func (f *nestFrame) value() int {
	f.endStatement()
	v := f.stmtMax
	switch f.kind {
	case nestParenKind:
		v += nestParen
		if f.stmt {
			v += nestSubquery
		}
		return v
	case nestBracketKind:
		v += nestBracket
	case nestCaseKind:
		v += nestCase
	case nestAtomicKind:
		v += nestAtomic
	}
	if f.stmt {
		v += nestStmt
	}
	return v
}

// open is a lower bound on what an open frame adds to the depth of
// anything that will still be found inside it.
func (f *nestFrame) open() int {
	return f.setops + f.joins + f.ops + 1
}

// Context of the previous token, for the rules of nestingBound.
const (
	prevNone = iota
	prevWord
	prevAs
	prevBegin
	prevDot
	prevClose // ) or ]
	prevOther
)

// nestingBound returns an upper bound on the depth (in tree levels) of the
// parse tree libpg_query builds for sql. It runs in time linear in
// len(sql), allocates only its stack of open groups, and never recurses.
// When more groups are open at once than limit, it stops and returns a
// value above limit.
//
// The tokens come from lexToken, which follows libpg_query's lexer (see
// there). Where the scan could misjudge what is code, it errs on the side
// of counting; a text it cannot lex to the end (an unterminated literal or
// comment, which the parser rejects) is bounded over what was scanned.
//
// Why the bound holds. The parse tree of a statement is its statement
// structure (bounded: nestStmt), its FROM items, and its expressions. A
// node's depth is the number of its ancestors. Ancestors come from:
//
//   - groups: every parenthesis, bracket, CASE ... END and BEGIN ATOMIC ...
//     END becomes a subtree hanging below the construct around it, adding
//     at most nestParen/nestBracket/nestCase/nestAtomic levels (plus
//     nestSubquery or nestStmt if it holds a statement) above its own
//     contents. A group's
//     bound is computed from its contents alone and enters its parent as a
//     child of the segment it was found in: the path to a node inside a
//     group crosses the group's ancestors in the parent, then the group.
//     A group followed by '.' or '[' (indirection) gets one more level.
//     Only a parenthesis whose first word is SELECT, VALUES, TABLE, WITH,
//     INSERT, UPDATE, DELETE, MERGE or NOTIFY can hold a statement
//     (subqueries, CTE bodies, COPY (query), rule actions); the whole text
//     and BEGIN ATOMIC bodies always do.
//   - unbracketed chains within a group, of three kinds that nest
//     differently:
//     1. UNION/INTERSECT/EXCEPT build a left-deep SelectStmt chain that
//     spans its members' commas and boolean operators, so they are
//     counted over the whole statement (reset only by ';').
//     2. JOIN builds a left-deep JoinExpr chain within one FROM item;
//     FROM items are separated by commas, so JOINs are counted per
//     comma-separated element (a join's ON clause may hold OR and AND,
//     so they do not reset this count).
//     3. Expression operators: every token that can create a node with
//     an operand on either side or after it (each operator token,
//     '::', ':=', NOT, IS, ISNULL, NOTNULL, COLLATE, AT, OVERLAPS, ANY,
//     SOME, ALL, OPERATOR; LIKE, ILIKE, SIMILAR, BETWEEN and IN count
//     2 because they add a FuncCall or List level) adds at most one
//     level per occurrence (two for the double ones). They are counted
//     per segment: commas, OR, AND, WHEN, THEN and ELSE end a
//     segment. That is sound because OR and AND are the
//     lowest-precedence expression operators and PostgreSQL's grammar
//     flattens a chain of them into one BoolExpr (makeAndExpr and
//     makeOrExpr append to the left operand's list), so the segments
//     between them are sibling operands one level down; CASE's WHEN,
//     THEN and ELSE delimit its sibling operands (CASE is a group, so
//     no OR inside it can end a segment of the expression around it);
//     in MERGE they separate sibling WHEN clauses. The AND of BETWEEN
//     is not boolean (a BETWEEN b AND NOT c BETWEEN ... nests without
//     bound), so the first AND after a BETWEEN in the same group does
//     not end a segment; its lower bound is a b_expr, which can hold no
//     AND of its own.
//
// A segment's value is its operator count plus the largest of its groups'
// bounds and nestLeaf (what hangs below the last counted node); an
// element's is its JOIN count plus its largest segment; a statement's is
// its set-operation count plus its largest element; a group's is its
// constant plus its largest statement.
//
// Every doubt is resolved towards a larger bound: a token that creates no
// node is still counted (SELECT * counts its operator, IN SCHEMA its IN);
// a word after '.' is a field name whatever it spells (t.and, t.case);
// OR, AND, WHEN, THEN, ELSE and END right after AS are a label (SELECT 1
// AS or) and end nothing, while CASE and BEGIN ATOMIC there still open a
// group; an END that closes nothing is ignored; a group left open is
// closed at the end; a ')' or ']' closes any CASE or BEGIN ATOMIC left
// open inside its group (a syntax error for the parser).
func nestingBound(sql string, limit int) int {
	stack := make([]nestFrame, 1, 16)
	stack[0] = nestFrame{kind: nestTop, stmt: true, atStart: true}
	push := func(kind nestKind, stmt bool) bool {
		stack = append(stack, nestFrame{kind: kind, stmt: stmt, atStart: true})
		return len(stack) <= limit
	}
	// pop closes the top frame into its parent.
	pop := func() {
		v := stack[len(stack)-1].value()
		stack = stack[:len(stack)-1]
		p := &stack[len(stack)-1]
		p.child = max(p.child, v)
	}
	prev := prevNone
	i := 0
scan:
	for {
		tok, start, end := lexToken(sql, i)
		i = end
		top := &stack[len(stack)-1]
		if tok != tokComment && tok != tokWord {
			top.atStart = false
		}
		switch tok {
		case tokEOF, tokUnterminated:
			break scan
		case tokComment:
			continue
		case tokString, tokParam, tokNumber, tokOther, tokDotDot, tokColon:
			prev = prevOther
		case tokQuotedIdent:
			prev = prevWord
		case tokWord:
			atStart := top.atStart
			top.atStart = false
			p := prev
			prev = prevWord
			if p == prevDot {
				break // a column or field name, whatever it spells
			}
			labelled := p == prevAs
			switch keyword(sql[start:end]) {
			case kwStatement:
				if atStart {
					top.stmt = true
				}
			case kwAs:
				prev = prevAs
			case kwBegin:
				prev = prevBegin
			case kwAtomic:
				if p == prevBegin && !push(nestAtomicKind, true) {
					break scan
				}
			case kwCase:
				if !push(nestCaseKind, false) {
					break scan
				}
			case kwEnd:
				if !labelled && (top.kind == nestCaseKind || top.kind == nestAtomicKind) {
					pop()
				}
			case kwOr, kwWhen, kwThen, kwElse:
				if !labelled {
					top.endSegment()
				}
			case kwAnd:
				switch {
				case labelled:
				case top.between > 0:
					top.between--
				default:
					top.endSegment()
				}
			case kwBetween:
				top.between++
				top.ops += 2
			case kwSetOp:
				top.setops++
			case kwJoin:
				top.joins++
			case kwOp1:
				top.ops++
			case kwOp2:
				top.ops += 2
			}
		case tokOpen, tokOpenBracket:
			if prev == prevClose {
				top.ops++ // (x)[1]: A_Indirection above the group
			}
			kind := nestParenKind
			if tok == tokOpenBracket {
				kind = nestBracketKind
			}
			if !push(kind, false) {
				break scan
			}
			prev = prevOther
		case tokClose, tokCloseBracket:
			want := nestParenKind
			if tok == tokCloseBracket {
				want = nestBracketKind
			}
			for k := len(stack) - 1; k > 0; k-- {
				if stack[k].kind == want {
					for len(stack) > k {
						pop()
					}
					break
				}
			}
			prev = prevClose
		case tokComma:
			top.endElement()
			prev = prevOther
		case tokSemicolon:
			top.endStatement()
			prev = prevOther
		case tokDot:
			if prev == prevClose {
				top.ops++ // (x).field: A_Indirection above the group
			}
			prev = prevDot
		case tokTypecast, tokColonEquals:
			top.ops++ // TypeCast, NamedArgExpr
			prev = prevOther
		case tokOperator:
			top.ops += operatorTokens(sql[start:end])
			prev = prevOther
		}
	}
	if len(stack) > limit {
		// Too many open groups to be worth closing: each adds at least
		// one level, so the bound is above the limit.
		total := 0
		for k := range stack {
			total += stack[k].open()
		}
		return total
	}
	for len(stack) > 1 {
		pop()
	}
	return stack[0].value()
}

// keyword classes for nestingBound.
const (
	kwNone = iota
	kwStatement
	kwAs
	kwBegin
	kwAtomic
	kwCase
	kwEnd
	kwOr
	kwAnd
	kwWhen
	kwThen
	kwElse
	kwBetween
	kwSetOp
	kwJoin
	kwOp1
	kwOp2
)

// keyword classifies an identifier by its ASCII-lower-cased spelling.
// PostgreSQL folds only ASCII letters when it looks up keywords, so words
// with other bytes are never keywords (strings.EqualFold would match the
// Kelvin sign to k and the long s to s).
func keyword(w string) int {
	if len(w) < 2 || len(w) > 9 {
		return kwNone
	}
	var buf [9]byte
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= 0x80 {
			return kwNone
		}
		buf[i] = c | 0x20 // letters, digits, '_' and '$' survive this
	}
	switch string(buf[:len(w)]) {
	case "select", "values", "table", "with", "insert", "update", "delete", "merge", "notify":
		return kwStatement
	case "as":
		return kwAs
	case "begin":
		return kwBegin
	case "atomic":
		return kwAtomic
	case "case":
		return kwCase
	case "end":
		return kwEnd
	case "or":
		return kwOr
	case "and":
		return kwAnd
	case "when":
		return kwWhen
	case "then":
		return kwThen
	case "else":
		return kwElse
	case "between":
		return kwBetween
	case "union", "intersect", "except":
		return kwSetOp
	case "join":
		return kwJoin
	case "not", "is", "isnull", "notnull", "collate", "at", "overlaps", "any", "some", "all", "operator":
		return kwOp1
	case "like", "ilike", "similar", "in":
		return kwOp2
	}
	return kwNone
}
