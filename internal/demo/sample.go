package demo

// SampleSQL creates the demo's orders database content: customers with
// personal data (e-mail, SSN, card number) and their orders. The values are
// fictitious but have the shapes the content classifiers recognise (the card
// numbers pass the Luhn check).
const SampleSQL = `
CREATE TABLE customers (
	id          serial PRIMARY KEY,
	name        text NOT NULL,
	email       text NOT NULL,
	ssn         text,
	card_number text,
	created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
	id          serial PRIMARY KEY,
	customer_id int NOT NULL REFERENCES customers(id),
	amount      numeric(10,2) NOT NULL,
	status      text NOT NULL DEFAULT 'new',
	note        text,
	created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customers (name, email, ssn, card_number) VALUES
	('Ada Lovelace',   'ada@example.com',     '123-45-6789', '4111111111111111'),
	('Alan Turing',    'alan@example.org',    '234-56-7890', '5500005555555559'),
	('Grace Hopper',   'grace@example.net',   '345-67-8901', '340000000000009'),
	('Edsger Dijkstra','edsger@example.com',  '456-78-9012', '6011000000000004'),
	('Barbara Liskov', 'barbara@example.org', '567-89-0123', '3530111333300000');
INSERT INTO orders (customer_id, amount, status, note)
SELECT 1 + (i % 5), (i * 7.25)::numeric(10,2),
	(ARRAY['new','paid','shipped','delivered'])[1 + i % 4],
	CASE WHEN i % 10 = 0 THEN 'call customer at ada@example.com' END
FROM generate_series(1, 40) AS i;
`
