package rpc

// WSMaxPerKey is wsMaxPerKey, for tests.
const WSMaxPerKey = wsMaxPerKey
