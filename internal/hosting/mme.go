package hosting

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Variant modes, as SageMaker's container Mode names them.
const (
	// ModeSingleModel serves the model's own artifact (the default).
	ModeSingleModel = "SingleModel"
	// ModeMultiModel serves many models from a prefix, each loaded into
	// an instance on first use through the multi-model container contract
	// and named per invocation by X-Amzn-SageMaker-Target-Model.
	ModeMultiModel = "MultiModel"
)

// headerTargetModel carries the invocation's target model to the
// container, as SageMaker sends it.
const headerTargetModel = "X-Amzn-SageMaker-Target-Model"

// maxTargetModelLen is the runtime's limit on TargetModel.
const maxTargetModelLen = 1024

// ModelCache shapes a multi-model variant's cache of loaded models on
// each instance. Models are evicted least recently used when a new one
// does not fit (or the server answers 507), never while serving, never
// when pinned.
type ModelCache struct {
	// MemoryBudgetBytes is what each instance's models may take together,
	// counting each as the size of its unpacked artifact (0: no bound).
	MemoryBudgetBytes int64 `json:"memory_budget_bytes,omitempty"`
	// MaxModels bounds the models loaded on each instance (0: no bound).
	MaxModels int `json:"max_models,omitempty"`
	// Pinned are target models never evicted once loaded.
	Pinned []string `json:"pinned,omitempty"`
}

// validateMode checks a variant's mode and multi-model fields.
func (v *Variant) validateMode(field string) []string {
	var errs []string
	switch v.Mode {
	case "", ModeSingleModel:
		if v.ModelDataPrefix != "" || v.ModelCache != nil {
			errs = append(errs, fmt.Sprintf("%s: model_data_prefix and model_cache need mode MultiModel", field))
		}
		return errs
	case ModeMultiModel:
	default:
		return append(errs, fmt.Sprintf("%s.mode: %q must be SingleModel or MultiModel", field, v.Mode))
	}
	if v.ModelDataPrefix == "" {
		errs = append(errs, fmt.Sprintf("%s.model_data_prefix: required for MultiModel (a directory of .tar.gz artifacts: file:///models/ or an absolute path)", field))
	}
	if c := v.ModelCache; c != nil {
		if c.MemoryBudgetBytes < 0 || c.MaxModels < 0 {
			errs = append(errs, fmt.Sprintf("%s.model_cache: memory_budget_bytes and max_models must not be negative", field))
		}
		for i, p := range c.Pinned {
			if msg := validTarget(p); msg != "" {
				errs = append(errs, fmt.Sprintf("%s.model_cache.pinned[%d]: %s", field, i, msg))
			}
		}
	}
	return errs
}

// validTarget says what is wrong with a target model name, or "".
func validTarget(t string) string {
	switch {
	case t == "" || len(t) > maxTargetModelLen:
		return fmt.Sprintf("a target model is 1 to %d characters", maxTargetModelLen)
	case strings.HasPrefix(t, "/") || strings.Contains(t, `\`) || slices.Contains(strings.Split(t, "/"), ".."):
		return fmt.Sprintf("%q must be a path relative to the model data prefix, without \"..\"", t)
	case strings.IndexFunc(t, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0:
		return fmt.Sprintf("%q holds control characters", t)
	}
	return ""
}

// multiModel is a multi-model variant's view of what each instance has
// loaded.
type multiModel struct {
	mu    sync.Mutex
	insts map[*instance]*instanceModels
	tick  uint64
	// found caches where each target model's artifact was unpacked.
	found map[string]foundModel
}

// foundModel is a target model's unpacked artifact.
type foundModel struct {
	dir  string
	size int64
}

// instanceModels are the models one instance holds or is loading.
type instanceModels struct {
	models map[string]*hostedModel
	used   int64
}

// hostedModel is one model on one instance.
type hostedModel struct {
	target, key string
	size        int64
	pinned      bool
	// ready is closed once the load ended; err says how.
	ready chan struct{}
	err   error
	inUse int
	last  uint64
}

func (h *hostedModel) loaded() bool {
	select {
	case <-h.ready:
		return h.err == nil
	default:
		return false
	}
}

// multi returns the variant's model map, made on first use.
func (v *variant) multi() *multiModel {
	if m := v.mme.Load(); m != nil {
		return m
	}
	v.mme.CompareAndSwap(nil, &multiModel{insts: map[*instance]*instanceModels{}, found: map[string]foundModel{}})
	return v.mme.Load()
}

// modelKey is the model_name a target is loaded under: the target with
// anything but letters, digits, '.', '_' and '-' replaced (at most 100
// characters, readable in the server's logs), then "-" and a hash of the
// whole target, so that two targets never share a name.
func modelKey(target string) string {
	safe := []byte(target[:min(len(target), 100)])
	for i, b := range safe {
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '_' || b == '-') {
			safe[i] = '_'
		}
	}
	sum := sha256.Sum256([]byte(target))
	return string(safe) + "-" + hex.EncodeToString(sum[:6])
}

// invokeMultiModel serves an invocation of a multi-model variant: it
// places the target model (an instance that has it, else the least
// loaded, loading it there once however many ask at once), then invokes
// it through POST /models/{name}/invoke.
func (p *plane) invokeMultiModel(ctx context.Context, v *variant, inv *Invocation) (*Result, error) {
	if v.spec.Mode != ModeMultiModel {
		return nil, Validation("Endpoint %s is not a multi-model endpoint: send the request without %s.", inv.Endpoint, headerTargetModel)
	}
	if inv.TargetModel == "" {
		return nil, Validation("Endpoint %s is a multi-model endpoint: name the model with %s (TargetModel in the SDKs).", inv.Endpoint, headerTargetModel)
	}
	if msg := validTarget(inv.TargetModel); msg != "" {
		return nil, Validation("%s: %s.", headerTargetModel, msg)
	}
	start := time.Now()
	mm, met := v.multi(), p.mmeMetrics().of(inv.Endpoint, v.spec.Name)
	var tried []*instance
	var lastErr error
	for attempt := 0; attempt < maxAttempts+1; attempt++ {
		in, hm, err := p.placeModel(ctx, v, mm, inv.TargetModel, tried)
		if err != nil {
			return nil, err
		}
		if in == nil {
			break
		}
		hit := hm.loaded()
		if hit {
			met.hits.Inc()
		} else {
			met.misses.Inc()
			waited := time.Now()
			select {
			case <-hm.ready:
			case <-ctx.Done():
				mm.done(hm)
				in.release()
				return nil, ctx.Err()
			}
			met.wait.Observe(time.Since(waited).Seconds())
		}
		if hm.err != nil {
			mm.done(hm)
			in.release()
			lastErr = hm.err
			tried = append(tried, in)
			continue
		}
		res, err, retry := p.post(ctx, in, inv, "/models/"+hm.key+"/invoke")
		mm.done(hm)
		in.release()
		if err == nil {
			v.stats.record(msSince(start), false)
			return res, nil
		}
		if he, ok := err.(*Error); ok && he.OriginalStatus == http.StatusNotFound {
			// The server lost the model (it restarted): load it again.
			mm.forget(in, hm)
			lastErr = err
			continue
		}
		lastErr = err
		if !retry {
			break
		}
		tried = append(tried, in)
	}
	if lastErr == nil {
		lastErr = Unavailable("No instance of variant %s of endpoint %s is ready; try again shortly.", v.spec.Name, inv.Endpoint)
	}
	he, _ := lastErr.(*Error)
	v.stats.record(msSince(start), !(he != nil && he.Status < 500 && he.Status != http.StatusFailedDependency))
	return nil, lastErr
}

// placeModel picks the instance a target model is invoked on and holds
// it (the instance's outstanding count and the model's in-use count). It
// returns no instance when none is ready.
func (p *plane) placeModel(ctx context.Context, v *variant, mm *multiModel, target string, tried []*instance) (*instance, *hostedModel, error) {
	var live []*instance
	for _, in := range v.instances() {
		if in.ready.Load() && !in.draining.Load() && !slices.Contains(tried, in) {
			live = append(live, in)
		}
	}
	if len(live) == 0 {
		return nil, nil, nil
	}
	mm.mu.Lock()
	mm.prune(v.instances())
	if in, hm := mm.holder(live, target); in != nil {
		mm.mu.Unlock()
		return in, hm, nil
	}
	found, ok := mm.found[target]
	mm.mu.Unlock()
	if !ok {
		var err error
		if found, err = p.findModel(ctx, v, target); err != nil {
			return nil, nil, err
		}
	}
	mm.mu.Lock()
	defer mm.mu.Unlock()
	mm.found[target] = found
	if in, hm := mm.holder(live, target); in != nil {
		return in, hm, nil
	}
	cache := v.spec.ModelCache
	if cache == nil {
		cache = &ModelCache{}
	}
	for {
		in, victims := mm.leastLoaded(live, found.size, cache)
		if in == nil {
			break
		}
		if !in.acquire() {
			live = slices.DeleteFunc(live, func(x *instance) bool { return x == in })
			continue
		}
		im := mm.of(in)
		for _, x := range victims {
			delete(im.models, x.target)
			im.used -= x.size
		}
		mm.tick++
		hm := &hostedModel{target: target, key: modelKey(target), size: found.size, pinned: slices.Contains(cache.Pinned, target),
			ready: make(chan struct{}), inUse: 1, last: mm.tick}
		im.models[target] = hm
		im.used += hm.size
		p.wg.Add(1)
		go p.loadModel(v, mm, in, hm, found.dir, victims)
		return in, hm, nil
	}
	return nil, nil, Unavailable("No instance of variant %s has room for model %s: the models loaded on each are serving or pinned; try again shortly.", v.spec.Name, target)
}

// leastLoaded picks the instance a model of size is loaded on, with the
// models to evict there: the fewest calls outstanding; among equals, one
// with room to spare, else the one whose least recently used model is
// the oldest, so that evictions follow LRU across the variant. mm.mu is
// held.
func (mm *multiModel) leastLoaded(live []*instance, size int64, cache *ModelCache) (*instance, []*hostedModel) {
	var best *instance
	var bestVictims []*hostedModel
	var bestOut int64
	for _, in := range live {
		victims, ok := mm.room(in, size, cache)
		if !ok {
			continue
		}
		out := in.outstanding.Load()
		better := best == nil || out < bestOut
		if !better && out == bestOut {
			switch {
			case len(bestVictims) == 0:
				better = len(victims) == 0 && mm.of(in).used < mm.of(best).used
			case len(victims) == 0:
				better = true
			default:
				better = victims[0].last < bestVictims[0].last
			}
		}
		if better {
			best, bestVictims, bestOut = in, victims, out
		}
	}
	return best, bestVictims
}

// holder returns the least busy live instance that holds or is loading
// target, with the model held for the call. mm.mu is held.
func (mm *multiModel) holder(live []*instance, target string) (*instance, *hostedModel) {
	var best *instance
	var bestHM *hostedModel
	for _, in := range live {
		hm := mm.of(in).models[target]
		if hm == nil || (best != nil && in.outstanding.Load() >= best.outstanding.Load()) {
			continue
		}
		best, bestHM = in, hm
	}
	if best == nil || !best.acquire() {
		return nil, nil
	}
	mm.tick++
	bestHM.inUse++
	bestHM.last = mm.tick
	return best, bestHM
}

// of returns an instance's models, made on first use. mm.mu is held.
func (mm *multiModel) of(in *instance) *instanceModels {
	im := mm.insts[in]
	if im == nil {
		im = &instanceModels{models: map[string]*hostedModel{}}
		mm.insts[in] = im
	}
	return im
}

// prune forgets instances no longer in the variant. mm.mu is held.
func (mm *multiModel) prune(current []*instance) {
	if len(mm.insts) <= len(current) {
		return
	}
	for in := range mm.insts {
		if !slices.Contains(current, in) {
			delete(mm.insts, in)
		}
	}
}

// room returns the models to evict from in, least recently used first,
// so that a model of size fits its cache; ok is false when even evicting
// every idle, unpinned, loaded model would not make room. mm.mu is held.
func (mm *multiModel) room(in *instance, size int64, cache *ModelCache) (victims []*hostedModel, ok bool) {
	im := mm.of(in)
	used, count := im.used, len(im.models)
	fits := func() bool {
		return (cache.MemoryBudgetBytes == 0 || used+size <= cache.MemoryBudgetBytes) && (cache.MaxModels == 0 || count+1 <= cache.MaxModels)
	}
	if fits() {
		return nil, true
	}
	for _, hm := range mm.evictable(im) {
		victims = append(victims, hm)
		used -= hm.size
		count--
		if fits() {
			return victims, true
		}
	}
	return nil, false
}

// evictable lists an instance's idle, unpinned, loaded models, least
// recently used first. mm.mu is held.
func (mm *multiModel) evictable(im *instanceModels) []*hostedModel {
	var out []*hostedModel
	for _, hm := range im.models {
		if hm.inUse == 0 && !hm.pinned && hm.loaded() {
			out = append(out, hm)
		}
	}
	slices.SortFunc(out, func(a, b *hostedModel) int { return int(a.last) - int(b.last) })
	return out
}

// done ends a call's hold on a model.
func (mm *multiModel) done(hm *hostedModel) {
	mm.mu.Lock()
	hm.inUse--
	mm.mu.Unlock()
}

// forget drops a model from an instance's map if it is still there.
func (mm *multiModel) forget(in *instance, hm *hostedModel) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	if im := mm.insts[in]; im != nil && im.models[hm.target] == hm {
		delete(im.models, hm.target)
		im.used -= hm.size
	}
}

// evictOne takes the least recently used idle model off in's map to
// make room after a 507, or returns nil.
func (mm *multiModel) evictOne(in *instance) *hostedModel {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	im := mm.of(in)
	list := mm.evictable(im)
	if len(list) == 0 {
		return nil
	}
	hm := list[0]
	delete(im.models, hm.target)
	im.used -= hm.size
	return hm
}

// findModel resolves a target model's artifact under the variant's
// prefix; one that cannot be found or unpacked is the caller's 400, as in
// SageMaker.
func (p *plane) findModel(ctx context.Context, v *variant, target string) (foundModel, error) {
	uri := strings.TrimSuffix(v.spec.ModelDataPrefix, "/") + "/" + target
	dir, err := p.blobs.Resolve(ctx, uri)
	if err != nil {
		return foundModel{}, Validation("Failed to download model data for target model %s (%s): ensure an artifact is at that path under the endpoint's model data prefix.", target, unwrapBlob(err))
	}
	var size int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
			}
		}
		return nil
	})
	return foundModel{dir: dir, size: size}, nil
}

// unwrapBlob shortens a blob error to what the caller can act on.
func unwrapBlob(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

// loadModel unloads the victims from in, then loads hm there, evicting
// further on a 507, and wakes whoever waits for it.
func (p *plane) loadModel(v *variant, mm *multiModel, in *instance, hm *hostedModel, dir string, victims []*hostedModel) {
	defer p.wg.Done()
	met := p.mmeMetrics().of(in.endpoint, v.spec.Name)
	timeout := v.startupTimeout()
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	for _, x := range victims {
		p.unloadModel(ctx, v, in, x)
	}
	start := time.Now()
	for {
		status, body, err := p.modelCall(ctx, in, http.MethodPost, "/models", fmt.Sprintf(`{"model_name":%q,"url":%q}`, hm.key, dir))
		switch {
		case err != nil:
			hm.err = Unavailable("Loading model %s on instance %s failed: %v", hm.target, in.ID(), err)
		case status/100 == 2 || status == http.StatusConflict:
			// 409: the server has it already (loaded before a restart of
			// Junction).
		case status == http.StatusInsufficientStorage:
			if x := mm.evictOne(in); x != nil {
				p.unloadModel(ctx, v, in, x)
				continue
			}
			hm.err = Unavailable("Instance %s has no memory left for model %s, and every model loaded there is serving or pinned; try again shortly.", in.ID(), hm.target)
		default:
			hm.err = ModelFailed(v.spec.Name, status, "loading model "+hm.target+": "+body)
		}
		break
	}
	if hm.err != nil {
		mm.forget(in, hm)
	} else {
		met.loads.Inc()
		p.spec.Event(in.endpoint, fmt.Sprintf("model %s loaded on instance %s in %s", hm.target, in.ID(), time.Since(start).Round(time.Millisecond)))
	}
	close(hm.ready)
}

// unloadModel asks the server to unload an evicted model.
func (p *plane) unloadModel(ctx context.Context, v *variant, in *instance, hm *hostedModel) {
	status, body, err := p.modelCall(ctx, in, http.MethodDelete, "/models/"+hm.key, "")
	if err == nil && (status/100 == 2 || status == http.StatusNotFound) {
		p.mmeMetrics().of(in.endpoint, v.spec.Name).unloads.Inc()
		p.spec.Event(in.endpoint, fmt.Sprintf("model %s unloaded from instance %s (least recently used)", hm.target, in.ID()))
		return
	}
	if p.log != nil {
		p.log.Warn("hosting: unload model", "instance", in.ID(), "model", hm.target, "status", status, "body", body, "err", err)
	}
}

// modelCall makes one management call to an instance.
func (p *plane) modelCall(ctx context.Context, in *instance, method, path, body string) (int, string, error) {
	base := in.base.Load()
	if base == nil {
		return 0, "", fmt.Errorf("instance %s has no address", in.ID())
	}
	req, err := http.NewRequestWithContext(ctx, method, *base+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}
