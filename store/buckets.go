package store

import (
	"fmt"
	"slices"

	"github.com/apikeyd/apikeyd/store/kv"
)

// Every bucket of the file, created at Open. Keys and values:
//
//	meta     "schema" → schema version, decimal ASCII
//	keys     key id → keyRecord, binary (record.go)
//	digests  SHA-256(secret) → key id
//	account_keys  account + 0x00 + key id → empty (lists keys of an account in id order)
//	accounts  account name → accountRecord, binary (accounts.go)
//	users     login name ("<name>@<account>"; a legacy user's name has no '@') → userRecord, binary (users.go)
//	owner_keys  owner ("user:<login name>", "sa:<account>/<name>") + 0x00 + key id → empty
//	service_accounts  account + 0x00 + name → serviceAccountRecord (serviceaccounts.go)
//	key_names  account + 0x00 + owner + 0x00 + key name → key id (names are unique per holder)
//	audit     sequence (8 bytes, big-endian) → AuditRecord, binary (audit.go)
//	audit_account  account + 0x00 + sequence → empty (an account's records in order)
//	key_counts  account, or owner → uvarint count of its keys (totals of lists without a scan);
//	            also the counts of key_index's lists (listindex.go)
//	key_index  secondary indexes of keys for filtered lists (listindex.go)
var (
	bucketMeta            = []byte("meta")
	bucketKeys            = []byte("keys")
	bucketDigests         = []byte("digests")
	bucketAccountKeys     = []byte("account_keys")
	bucketAccounts        = []byte("accounts")
	bucketUsers           = []byte("users")
	bucketOwnerKeys       = []byte("owner_keys")
	bucketServiceAccounts = []byte("service_accounts")
	bucketAudit           = []byte("audit")
	bucketAuditAccount    = []byte("audit_account")
	bucketKeyNames        = []byte("key_names")
	bucketKeyCounts       = []byte("key_counts")

	allBuckets = [][]byte{bucketMeta, bucketKeys, bucketDigests, bucketAccountKeys, bucketAccounts, bucketUsers,
		bucketOwnerKeys, bucketServiceAccounts, bucketAudit, bucketAuditAccount, bucketKeyNames, bucketKeyCounts,
		bucketKeyIndex}
)

var metaSchema = []byte("schema")

// SchemaVersion is the layout this code reads and writes. Open refuses a file
// written by a newer version.
//
// Version 2 added key limits (record tags 10 and 11) and key_counts. A
// version-1 file is migrated when opened; after that a build of version 1
// refuses it, rather than rewrite its keys without the limits it cannot
// read.
//
// Version 3 added key_index. A file of version 2 or older gets it built
// when opened.
const SchemaVersion = 3

// Buckets names every bucket of a store, for what moves a store between
// engines whole (kv.Copy, kv.Digest). The names must not be modified.
func Buckets() [][]byte { return slices.Clone(allBuckets) }

// IsStore reports whether db holds a store of this build's schema, as
// Open leaves it: nil, or an error wrapping ErrSchema that names the
// bucket missing or the version found. It only reads.
func IsStore(db kv.DB) error {
	return db.View(func(tx kv.Tx) error {
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("%w: no bucket %q", ErrSchema, name)
			}
		}
		n, err := schemaOf(tx.Bucket(bucketMeta).Get(metaSchema))
		if err != nil {
			return err
		}
		if n != SchemaVersion {
			return fmt.Errorf("%w: version %d, this build writes %d", ErrSchema, n, SchemaVersion)
		}
		return nil
	})
}
