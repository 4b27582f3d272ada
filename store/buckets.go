package store

// Every bucket of the file, created at Open. Keys and values:
//
//	meta     "schema" → schema version, decimal ASCII
//	keys     key id → keyRecord, binary (record.go)
//	digests  SHA-256(secret) → key id
//	account_keys  account + 0x00 + key id → empty (lists keys of an account in id order)
//	accounts  account name → accountRecord, binary (accounts.go)
//	users     user name → userRecord, binary (users.go); names are global, for login
//	owner_keys  owner ("user:<name>") + 0x00 + key id → empty (lists a user's keys)
var (
	bucketMeta        = []byte("meta")
	bucketKeys        = []byte("keys")
	bucketDigests     = []byte("digests")
	bucketAccountKeys = []byte("account_keys")
	bucketAccounts    = []byte("accounts")
	bucketUsers       = []byte("users")
	bucketOwnerKeys   = []byte("owner_keys")

	allBuckets = [][]byte{bucketMeta, bucketKeys, bucketDigests, bucketAccountKeys, bucketAccounts, bucketUsers, bucketOwnerKeys}
)

var metaSchema = []byte("schema")

// SchemaVersion is the layout this code reads and writes. Open refuses a file
// written by a newer version.
const SchemaVersion = 1
