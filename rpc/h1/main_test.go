package h1

import (
	"os"
	"testing"

	"github.com/apikeyd/apikeyd/store/storetest"
)

// TestMain stops the etcd that a run on etcd (storetest.BackendEnv) shares
// among its tests.
func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }
