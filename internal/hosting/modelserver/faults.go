package modelserver

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// knobs are the fault settings that POST /faults may change while the
// server runs. They start from the environment.
type knobs struct {
	pingFail    atomic.Bool
	delayNanos  atomic.Int64
	failRateBit atomic.Uint64 // math.Float64bits of the fail rate
}

func (k *knobs) set(delay time.Duration, failRate float64) {
	k.delayNanos.Store(int64(delay))
	k.failRateBit.Store(math.Float64bits(failRate))
}

func (k *knobs) delay() time.Duration { return time.Duration(k.delayNanos.Load()) }

func (k *knobs) failRate() float64 { return math.Float64frombits(k.failRateBit.Load()) }

// shouldFail draws whether this invocation fails under the fail rate.
func (k *knobs) shouldFail() bool {
	r := k.failRate()
	return r > 0 && rand.Float64() < r
}

// faultsDoc is the JSON of GET and POST /faults. In a POST every field is
// optional; the ones present replace the current value.
type faultsDoc struct {
	PingFail *bool    `json:"ping_fail,omitempty"`
	DelayMS  *int64   `json:"delay_ms,omitempty"`
	FailRate *float64 `json:"fail_rate,omitempty"`
}

func (s *server) currentFaults() faultsDoc {
	ping, delay, rate := s.knobs.pingFail.Load(), s.knobs.delay().Milliseconds(), s.knobs.failRate()
	return faultsDoc{PingFail: &ping, DelayMS: &delay, FailRate: &rate}
}

func writeFaults(w http.ResponseWriter, doc faultsDoc) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(doc)
}

// faultsOff answers /faults on a server started without the request
// knobs.
func faultsOff(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "the fault knobs are off: start the model server with --faults or "+EnvFaults+"=1 to use /faults", http.StatusNotFound)
}

// getFaults answers the live knobs.
func (s *server) getFaults(w http.ResponseWriter, _ *http.Request) {
	writeFaults(w, s.currentFaults())
}

// postFaults changes the live knobs and answers their new values.
func (s *server) postFaults(w http.ResponseWriter, r *http.Request) {
	var doc faultsDoc
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		http.Error(w, `bad /faults body: `+err.Error()+`; send JSON such as {"ping_fail": true, "delay_ms": 200, "fail_rate": 0.5}`, http.StatusBadRequest)
		return
	}
	if doc.DelayMS != nil && *doc.DelayMS < 0 {
		http.Error(w, "delay_ms must not be negative", http.StatusBadRequest)
		return
	}
	if doc.FailRate != nil && !(*doc.FailRate >= 0 && *doc.FailRate <= 1) {
		http.Error(w, "fail_rate must be from 0 to 1", http.StatusBadRequest)
		return
	}
	if doc.PingFail != nil {
		s.knobs.pingFail.Store(*doc.PingFail)
	}
	if doc.DelayMS != nil {
		s.knobs.delayNanos.Store(int64(*doc.DelayMS) * int64(time.Millisecond))
	}
	if doc.FailRate != nil {
		s.knobs.failRateBit.Store(math.Float64bits(*doc.FailRate))
	}
	cur := s.currentFaults()
	s.log.Info("fault knobs changed", "ping_fail", *cur.PingFail, "delay_ms", *cur.DelayMS, "fail_rate", *cur.FailRate)
	writeFaults(w, cur)
}

// Values of the fault attribute.
const (
	faultError = "error"
	faultCrash = "crash"
	faultHang  = "hang"
)

// attributes are the fault knobs of one request.
type attributes struct {
	fault  string
	delay  time.Duration
	status int
}

// parseAttributes reads the knobs in a custom-attributes header value:
// key=value pairs separated by semicolons or commas. Keys it does not know
// are left alone, since the header belongs to the caller; a known key with
// a bad value is an error that says what to send.
func parseAttributes(h string) (attributes, error) {
	var a attributes
	for h != "" {
		var pair string
		if i := strings.IndexAny(h, ";,"); i >= 0 {
			pair, h = h[:i], h[i+1:]
		} else {
			pair, h = h, ""
		}
		key, value, ok := strings.Cut(pair, "=")
		if !ok {
			continue
		}
		key, value = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(value)
		switch key {
		case "fault":
			switch value {
			case faultError, faultCrash, faultHang:
				a.fault = value
			default:
				return a, fmt.Errorf("%s: fault=%q: want error, crash or hang", customAttributes, value)
			}
		case "delay_ms":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 || n > int64(time.Hour/time.Millisecond) {
				return a, fmt.Errorf("%s: delay_ms=%q: want milliseconds from 0 to 3600000", customAttributes, value)
			}
			a.delay = time.Duration(n) * time.Millisecond
		case "status":
			n, err := strconv.Atoi(value)
			if err != nil || n < 200 || n > 599 {
				return a, fmt.Errorf("%s: status=%q: want an HTTP status from 200 to 599", customAttributes, value)
			}
			a.status = n
		}
	}
	return a, nil
}

// injectedStatusMessage is the body of a status=NNN answer.
func injectedStatusMessage(status int) string {
	return fmt.Sprintf("injected status %d %s: status=%d in %s", status, http.StatusText(status), status, customAttributes)
}
