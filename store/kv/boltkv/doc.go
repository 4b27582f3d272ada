// Package boltkv is the kv engine over one bbolt file: the embedded
// default, for one node. It owns the file and its transactions, and lends
// read transactions out again and again until the next write (readtx.go),
// which makes a one-key read cost little more than the lookup itself.
//
// It keeps no rules of the data; package store does. Features only a file
// has (a hot copy, bbolt's page check, the file's size) are reached
// through Bolt.
package boltkv
