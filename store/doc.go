// Package store keeps apikeyd's keys in a kv engine (package kv): one bbolt
// file (boltkv, Open), or another engine (OpenDB).
//
// It owns the data's layout (buckets.go), the schema version, key records and
// their indexes, secret generation and hashing, and the transactions around
// every read and write. A public method opens its own transaction; private
// helpers take a kv.Tx so that a read-modify-write is one transaction.
//
// Secrets are 32 lowercase hex digits. Only their SHA-256 digest is stored,
// indexed digest → key id, so a lookup hashes the caller's input first and
// never compares secrets byte by byte. The store never logs.
//
// It does not decide who may do what: callers (package rpc) check scopes,
// passing a check function where the decision needs the stored record, so it
// runs inside the same transaction as the write.
package store
