// Package jsonwire reads and writes JSON exactly as sent, for the request
// envelope, params and the replies of upstreams: Valid and ValidObject judge
// a body strictly (valid UTF-8, surrogates paired, bounded nesting), Members
// and Elements read an object's members and an array's elements as raw
// slices of the input, names compared byte for byte after unescaping and a
// name given twice refused, and AppendString writes a string as
// encoding/json does.
//
// It knows nothing of JSON-RPC: what goes wrong comes back as a plain error
// (ErrDuplicateKey, ErrTooManyMembers) or a false, and rpc turns it into the
// JSON-RPC error its caller sees.
package jsonwire
