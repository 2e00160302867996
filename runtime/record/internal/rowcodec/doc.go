// Package rowcodec holds the column encodings shared by the SQL stores of
// package record: string lists as JSON arrays, empty JSON as the empty
// string.
package rowcodec
