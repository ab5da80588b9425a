package ledger

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed prices.yaml
var builtinPrices []byte

// Price is a per-token price in USD per 1,000 tokens. CachedInputPer1K is
// the price of input tokens read from a prompt cache; nil means the input
// price applies. CacheWritePer1K is the price of input tokens written to a
// prompt cache (Anthropic and Bedrock report them); nil means 1.25 times
// the input price, which is what both charge for five-minute cache writes.
// MaxOutputTokens is the most output tokens the model documents for one
// request (0: not known); a request asking for more is refused, since
// the budgets reserve max_tokens times the output price.
type Price struct {
	InputPer1K       float64
	OutputPer1K      float64
	CachedInputPer1K *float64
	CacheWritePer1K  *float64
	MaxOutputTokens  int
}

// CacheWriteMultiplier prices cache writes when no price is given.
const CacheWriteMultiplier = 1.25

// Cost returns the USD cost of the given token counts. input includes
// cached and cache-write tokens.
func (p Price) Cost(input, cached, output int) float64 {
	return p.CostWithWrites(input, cached, 0, output)
}

// CostWithWrites is Cost for a call that also wrote tokens to a prompt
// cache; input includes both cached and written tokens.
func (p Price) CostWithWrites(input, cached, written, output int) float64 {
	uncached := input - cached - written
	if uncached < 0 {
		uncached = 0
	}
	cachedPrice := p.InputPer1K
	if p.CachedInputPer1K != nil {
		cachedPrice = *p.CachedInputPer1K
	}
	writePrice := p.InputPer1K * CacheWriteMultiplier
	if p.CacheWritePer1K != nil {
		writePrice = *p.CacheWritePer1K
	}
	return (float64(uncached)*p.InputPer1K + float64(cached)*cachedPrice + float64(written)*writePrice +
		float64(output)*p.OutputPer1K) / 1000
}

// InstancePrice is an hourly price of an instance type.
type InstancePrice struct {
	Type        string  `yaml:"type"`
	Accelerator string  `yaml:"accelerator"`
	USDPerHour  float64 `yaml:"usd_per_hour"`
}

// ProvisionedPrice is the price of reserved capacity for a managed model
// ("provisioned throughput"): USD per model unit per month, at a
// commitment of CommitmentMonths.
type ProvisionedPrice struct {
	ID                string  `yaml:"id"`
	PerModelUnitMonth float64 `yaml:"per_model_unit_month"`
	CommitmentMonths  int     `yaml:"commitment_months"`
}

// Catalog maps upstream model ids to prices. Lookups match the longest
// catalog id that prefixes the model id, so "gpt-4o-mini-2024-07-18"
// finds "gpt-4o-mini" and "us.anthropic.claude-3-5-haiku-20241022-v1:0"
// finds "anthropic.claude-3-5-haiku".
type Catalog struct {
	ids        []string // longest first
	prices     map[string]Price
	providerOf map[string]string
	Instances  []InstancePrice
	// Serverless prices serverless endpoints' compute.
	Serverless ServerlessPrice
	// Provisioned lists the models that sell reserved capacity.
	Provisioned []ProvisionedPrice
	// SavingsPlanDiscount is the fractional discount of a committed plan.
	SavingsPlanDiscount float64
}

type catalogFile struct {
	Models []struct {
		ID          string   `yaml:"id"`
		Provider    string   `yaml:"provider"`
		InputPer1K  float64  `yaml:"input_per_1k"`
		OutputPer1K float64  `yaml:"output_per_1k"`
		CachedPer1K *float64 `yaml:"cached_input_per_1k"`
		MaxOutput   int      `yaml:"max_output_tokens"`
	} `yaml:"models"`
	Provisioned         []ProvisionedPrice `yaml:"provisioned"`
	Instances           []InstancePrice    `yaml:"instances"`
	Serverless          ServerlessPrice    `yaml:"serverless"`
	SavingsPlanDiscount float64            `yaml:"savings_plan_discount"`
}

// ServerlessPrice is the price of serverless endpoints' compute.
type ServerlessPrice struct {
	// USDPerGBSecond is charged per GB of memory size per second of
	// processing time.
	USDPerGBSecond float64 `yaml:"usd_per_gb_second"`
}

// Builtin returns the catalog embedded in the binary.
func Builtin() *Catalog {
	c, err := ParseCatalog(builtinPrices)
	if err != nil {
		panic(fmt.Sprintf("built-in price catalog: %v", err))
	}
	return c
}

// ParseCatalog reads a catalog in the prices.yaml format.
func ParseCatalog(data []byte) (*Catalog, error) {
	var f catalogFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	c := &Catalog{prices: map[string]Price{}, providerOf: map[string]string{}, Instances: f.Instances, Serverless: f.Serverless,
		Provisioned: f.Provisioned, SavingsPlanDiscount: f.SavingsPlanDiscount}
	for i, p := range f.Provisioned {
		if p.ID == "" || p.PerModelUnitMonth <= 0 {
			return nil, fmt.Errorf("provisioned[%d]: needs an id and a positive per_model_unit_month", i)
		}
	}
	for i, in := range f.Instances {
		if in.Type == "" || in.USDPerHour <= 0 {
			return nil, fmt.Errorf("instances[%d]: needs a type and a positive usd_per_hour", i)
		}
	}
	if f.SavingsPlanDiscount < 0 || f.SavingsPlanDiscount >= 1 {
		return nil, fmt.Errorf("savings_plan_discount: %v must be from 0 up to (not including) 1", f.SavingsPlanDiscount)
	}
	for _, m := range f.Models {
		if m.MaxOutput < 0 {
			return nil, fmt.Errorf("models[%s]: max_output_tokens must not be negative", m.ID)
		}
		c.Set(m.ID, Price{InputPer1K: m.InputPer1K, OutputPer1K: m.OutputPer1K, CachedInputPer1K: m.CachedPer1K,
			MaxOutputTokens: m.MaxOutput})
		c.providerOf[m.ID] = m.Provider
	}
	return c, nil
}

// Set adds or replaces the price of a model id.
func (c *Catalog) Set(id string, p Price) {
	if _, ok := c.prices[id]; !ok {
		c.ids = append(c.ids, id)
		sort.Slice(c.ids, func(i, j int) bool { return len(c.ids[i]) > len(c.ids[j]) })
	}
	c.prices[id] = p
}

// Lookup returns the price of an upstream model id.
func (c *Catalog) Lookup(model string) (Price, bool) {
	if p, ok := c.prices[model]; ok {
		return p, true
	}
	// Cross-region inference profiles ("us.", "eu.", "apac.") name the
	// same model.
	if i := strings.IndexByte(model, '.'); i > 0 && i <= 4 {
		if p, ok := c.lookupPrefix(model[i+1:]); ok {
			return p, true
		}
	}
	return c.lookupPrefix(model)
}

func (c *Catalog) lookupPrefix(model string) (Price, bool) {
	for _, id := range c.ids {
		if strings.HasPrefix(model, id) {
			return c.prices[id], true
		}
	}
	return Price{}, false
}

// ModelsFor returns the catalog's model ids for a provider type, sorted.
func (c *Catalog) ModelsFor(providerType string) []string {
	var out []string
	for _, id := range c.ids {
		if c.providerOf[id] == providerType {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// Models returns every model id the catalog prices, sorted.
func (c *Catalog) Models() []string {
	out := append([]string(nil), c.ids...)
	sort.Strings(out)
	return out
}

// LookupProvisioned returns the reserved-capacity price of a model id,
// matched like Lookup: exactly, without a cross-region prefix, or by the
// longest catalog id that prefixes it.
func (c *Catalog) LookupProvisioned(model string) (ProvisionedPrice, bool) {
	candidates := []string{model}
	if i := strings.IndexByte(model, '.'); i > 0 && i <= 4 {
		candidates = append(candidates, model[i+1:])
	}
	for _, m := range candidates {
		for _, p := range c.Provisioned {
			if p.ID == m {
				return p, true
			}
		}
	}
	var best ProvisionedPrice
	for _, m := range candidates {
		for _, p := range c.Provisioned {
			if strings.HasPrefix(m, p.ID) && len(p.ID) > len(best.ID) {
				best = p
			}
		}
		if best.ID != "" {
			return best, true
		}
	}
	return ProvisionedPrice{}, false
}

// Instance returns the hourly price of an instance type.
func (c *Catalog) Instance(typ string) (InstancePrice, bool) {
	for _, in := range c.Instances {
		if in.Type == typ {
			return in, true
		}
	}
	return InstancePrice{}, false
}
