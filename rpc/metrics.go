package rpc

import (
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/apikeyd/apikeyd/store"
)

// Metrics follow client_golang's conventions: every series is named
// apikeyd_..., counters end in _total, durations are in seconds. Labels
// come from closed sets only: method names from the method table (or
// "(unknown)"), outcomes from the error ids (outcomeIDs), reasons and
// limits from the lists below. No secret, digest, key id or client input
// is ever a label.
//
// The call path pays no lock or map lookup for them: each method's
// counters and histogram are made when it is registered and kept on its
// Method row, outcomes are indexed by a fixed slice, and Inc and Observe
// are atomic.

// outcomeOK is the outcome of a call that succeeded.
const outcomeOK = "ok"

// outcomeOther is the outcome of a failure whose error id is not in
// outcomeIDs; it should never be seen (TestMetrics_OutcomesCoverErrorIDs).
const outcomeOther = "other"

// outcomeIDs are the outcomes a call counter is made for, in index order:
// "ok", every error id, then "other".
var outcomeIDs = []string{
	outcomeOK,
	ErrIDParse, ErrIDInvalidRequest, ErrIDBodyTooLarge, ErrIDBatchTooLarge, ErrIDMediaType, ErrIDHTTPMethod,
	ErrIDMethodNotFound, ErrIDInvalidParams, ErrIDInternal, ErrIDMissingKey, ErrIDInvalidKey, ErrIDScopeDenied,
	ErrIDEscalation, ErrIDKeyNotFound, ErrIDConflict, ErrIDOperatorOnly, ErrIDAccountNotFound, ErrIDAccountExists,
	ErrIDOperatorAccount, ErrIDLoginFailed, ErrIDLoginLocked, ErrIDBusy, ErrIDUserNotFound, ErrIDUserExists,
	ErrIDServiceAccountNotFound, ErrIDServiceAccountExists, ErrIDKeyNameTaken, ErrIDRateLimited, ErrIDQuotaExhausted,
	ErrIDUpstreamUnavailable, ErrIDCrossSite, ErrIDTooManyConnections, ErrIDUpstreamTimeout, ErrIDUpstreamBadReply,
	ErrIDUpstreamError, ErrIDLastOperatorKey, ErrIDHeldKey, ErrIDListTooBroad, ErrIDStale,
	outcomeOther,
}

// outcomeIndex returns the index in outcomeIDs of a failure's error id. It
// runs for failed calls only; a success is index 0.
func outcomeIndex(id string) int {
	for i := 1; i < len(outcomeIDs)-1; i++ {
		if outcomeIDs[i] == id {
			return i
		}
	}
	return len(outcomeIDs) - 1
}

// Reasons an authentication fails, as apikeyd_auth_failures_total labels
// them.
const (
	authMissingKey   = iota // no Authorization header (or none usable)
	authMalformedKey        // not a key of the right form
	authInvalidKey          // unknown, switched off, expired or held by an inactive holder
	authReasons
)

var authReasonNames = [authReasons]string{"missing_key", "malformed_key", "invalid_key"}

// metrics are one Server's Prometheus collectors, in a registry of their own.
type metrics struct {
	reg      *prometheus.Registry
	calls    *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inFlight prometheus.Gauge
	authFail [authReasons]prometheus.Counter
	rate     prometheus.Counter // apikeyd_limit_refusals_total{limit="rate"}
	quota    prometheus.Counter // apikeyd_limit_refusals_total{limit="quota"}
	login    prometheus.Counter // apikeyd_login_failures_total
	locked   prometheus.Counter // apikeyd_login_throttled_total
	unknown  *methodMetrics     // for calls of names not in the table
}

// methodMetrics are one method's call counters, by outcome index, and its
// latency histogram.
type methodMetrics struct {
	calls   []prometheus.Counter
	latency prometheus.Observer
}

func newMetrics(st *store.Store, version string) *metrics {
	reg := prometheus.NewRegistry()
	f := registerAll(reg)
	m := &metrics{reg: reg}
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apikeyd_calls_total",
		Help: "JSON-RPC calls served, by method and outcome (ok or the error id).",
	}, []string{"method", "outcome"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "apikeyd_call_duration_seconds",
		Help:    "Time to serve a JSON-RPC call, from authentication to the encoded result, by method.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"method"})
	f(m.calls, m.latency)
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "apikeyd_calls_in_flight",
		Help: "JSON-RPC calls being served now, on every transport.",
	})
	authFail := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apikeyd_auth_failures_total",
		Help: "Calls refused because their key was missing, malformed or invalid (unknown, switched off, expired, holder inactive).",
	}, []string{"reason"})
	for i, r := range authReasonNames {
		m.authFail[i] = authFail.WithLabelValues(r)
	}
	limits := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apikeyd_limit_refusals_total",
		Help: "Calls refused by a key's rate limit (limit=\"rate\") or quota (limit=\"quota\").",
	}, []string{"limit"})
	m.rate, m.quota = limits.WithLabelValues("rate"), limits.WithLabelValues("quota")
	m.login = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "apikeyd_login_failures_total",
		Help: "user.login calls refused for a wrong user name or password.",
	})
	m.locked = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "apikeyd_login_throttled_total",
		Help: "user.login calls refused because the source or the user name is throttled after failures.",
	})
	f(m.inFlight, authFail, limits, m.login, m.locked)

	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "apikeyd_build_info",
		Help:        "Always 1; its labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	build.Set(1)
	f(build, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector())

	if st != nil {
		m.storeMetrics(st, f)
	}
	m.unknown = m.forMethod("(unknown)")
	return m
}

// registerAll returns a function registering collectors in reg, panicking on
// a clash: a programming error found at start-up.
func registerAll(reg *prometheus.Registry) func(...prometheus.Collector) {
	return func(cs ...prometheus.Collector) { reg.MustRegister(cs...) }
}

func (m *metrics) storeMetrics(st *store.Store, f func(...prometheus.Collector)) {
	commit := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "apikeyd_store_write_duration_seconds",
		Help:    "Time of a store write transaction, from its start to the end of its commit (fsync included).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
	st.ObserveWrites(func(d time.Duration) { commit.Observe(d.Seconds()) })
	f(commit,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "apikeyd_store_size_bytes",
			Help: "Size of the data file (0 for a store over another engine).",
		}, func() float64 {
			n, err := st.Size()
			if err != nil {
				return 0
			}
			return float64(n)
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "apikeyd_auth_cache_hits_total",
			Help: "Authentications of a well-formed key answered from the auth cache.",
		}, func() float64 { return float64(st.Stats().AuthCacheHits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "apikeyd_auth_cache_misses_total",
			Help: "Authentications of a well-formed key that read the data file.",
		}, func() float64 { return float64(st.Stats().AuthCacheMisses) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "apikeyd_usage_flush_lag_seconds",
			Help: "Time since uses and quota spending were last written to the data file.",
		}, func() float64 { return time.Since(st.Stats().LastUsageFlush).Seconds() }),
	)
}

// forMethod makes the counters and histogram of a method name.
func (m *metrics) forMethod(name string) *methodMetrics {
	mm := &methodMetrics{calls: make([]prometheus.Counter, len(outcomeIDs)), latency: m.latency.WithLabelValues(name)}
	for i, o := range outcomeIDs {
		mm.calls[i] = m.calls.WithLabelValues(name, o)
	}
	return mm
}

// observeCall counts a finished call c that began at start: by method and
// outcome, its latency, and a failed or throttled login.
func (m *metrics) observeCall(c *call, start time.Time, err error) {
	mm := m.unknown
	if c.method != nil && c.method.metrics != nil {
		mm = c.method.metrics
	}
	mm.latency.Observe(time.Since(start).Seconds())
	if err == nil {
		mm.calls[0].Inc()
		return
	}
	id := toError(err).ID
	mm.calls[outcomeIndex(id)].Inc()
	switch id {
	case ErrIDLoginFailed:
		m.login.Inc()
	case ErrIDLoginLocked:
		m.locked.Inc()
	}
}

// authFailed counts a failed authentication by its error.
func (m *metrics) authFailed(err error) {
	switch err {
	case errMissingKey:
		m.authFail[authMissingKey].Inc()
	case errMalformedKey:
		m.authFail[authMalformedKey].Inc()
	case errInvalidKey:
		m.authFail[authInvalidKey].Inc()
	}
}

// spendFailed counts a call refused by a key's rate limit or quota.
func (m *metrics) spendFailed(err error) {
	switch toError(err).ID {
	case ErrIDRateLimited:
		m.rate.Inc()
	case ErrIDQuotaExhausted:
		m.quota.Inc()
	}
}

// MetricsHandler serves the server's metrics in Prometheus text format, or
// is nil when Options.NoMetrics turned them off.
func (s *Server) MetricsHandler() http.Handler {
	if s.metrics == nil {
		return nil
	}
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
}
