package rpc

// OutcomeIDs are the outcomes calls are counted by (metrics.go).
var OutcomeIDs = outcomeIDs
