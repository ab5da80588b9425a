package autoscale

import "time"

// sample is one look at a variant.
type sample struct {
	at                  time.Time
	concurrent          float64
	invocations, tokens int64
	backlog             float64
	hasBacklog          bool
}

// add appends a sample and drops those older than the window (keeping
// at least two, for rates).
func (t *track) add(sm sample, window time.Duration) {
	t.samples = append(t.samples, sm)
	cut := 0
	for cut < len(t.samples)-2 && sm.at.Sub(t.samples[cut].at) > window {
		cut++
	}
	t.samples = t.samples[cut:]
}

// rate reports whether a metric is a rate of a counter (per minute or per
// second) rather than a level.
func rate(metric string) (counter func(sample) int64, per time.Duration, ok bool) {
	switch metric {
	case InvocationsPerInstance:
		return func(s sample) int64 { return s.invocations }, time.Minute, true
	case TokensPerSecondPerInstance:
		return func(s sample) int64 { return s.tokens }, time.Second, true
	}
	return nil, 0, false
}

// level is a level metric's value in one sample, and whether it has one.
func level(metric string, sm sample) (float64, bool) {
	switch metric {
	case ConcurrentRequestsPerInstance:
		return sm.concurrent, true
	case BacklogPerInstance:
		return sm.backlog, sm.hasBacklog
	}
	return 0, false
}

// total is a metric's value for the whole variant over the window: a
// level's average, or a counter's rate from the first sample to the last;
// false when there is not enough to say.
func (t *track) total(metric string) (float64, bool) {
	if counter, per, ok := rate(metric); ok {
		first, last := t.samples[0], t.samples[len(t.samples)-1]
		secs := last.at.Sub(first.at).Seconds()
		if secs <= 0 {
			return 0, false
		}
		return float64(counter(last)-counter(first)) / secs * per.Seconds(), true
	}
	return t.statistic(metric, Average)
}

// statistic is Average, Minimum or Maximum of a metric for the whole
// variant over the window: of each sample for a level, of each interval
// between samples for a rate.
func (t *track) statistic(metric, stat string) (float64, bool) {
	if stat == "" {
		stat = Average
	}
	counter, per, isRate := rate(metric)
	if isRate && stat == Average {
		return t.total(metric)
	}
	var vals []float64
	for i, sm := range t.samples {
		if isRate {
			if i == 0 {
				continue
			}
			if secs := sm.at.Sub(t.samples[i-1].at).Seconds(); secs > 0 {
				vals = append(vals, float64(counter(sm)-counter(t.samples[i-1]))/secs*per.Seconds())
			}
		} else if v, ok := level(metric, sm); ok {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return 0, false
	}
	out := vals[0]
	for _, v := range vals[1:] {
		switch stat {
		case Minimum:
			out = min(out, v)
		case Maximum:
			out = max(out, v)
		default:
			out += v
		}
	}
	if stat == Average {
		out /= float64(len(vals))
	}
	return out, true
}
