-- case: multi statement with hidden write
SELECT 1; DELETE FROM customers; SELECT 2
-- case: semicolon inside string
SELECT 'a;DELETE FROM x' AS s
-- case: empty input
-- case: only comments
/* nothing */ -- here
-- case: only semicolons
;;
-- case: dollar quoted
SELECT $x$ DROP TABLE t $x$
-- case: unparseable
SELEC * FROM t
-- case: unterminated string
SELECT 'abc
-- case: incomplete statement
DELETE FROM
-- case: unicode identifier
SELECT "ñame" FROM "Tabla"
-- case: nested comment
/* a /* b */ c */ SELECT 1
-- case: escape string
SELECT E'\x41', U&'\0041'
