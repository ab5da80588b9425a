package tokens

import (
	"bytes"
	"encoding/json"
	"image"
	_ "image/gif" // registers the decoders whose headers give an image's size
	_ "image/jpeg"
	_ "image/png"
	"math"
	"strings"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// OpenAI's chat accounting, from the cookbook "How to count tokens with
// tiktoken": every message is wrapped as <|start|>{role/name}\n{content}<|end|>\n.
const (
	perMessage = 3 // <|start|>, the newline, <|end|>
	perName    = 1
	replyStart = 3 // <|start|>assistant<|message|>
	perRole    = 1 // system, user, assistant and tool are one token each
	perCall    = 3 // framing of an assistant's tool call (an estimate)
)

// The cookbook's constants for tool (function) definitions.
type toolCosts struct{ funcInit, propInit, propKey, enumInit, enumItem, funcEnd int }

var (
	toolsO200k  = toolCosts{funcInit: 7, propInit: 3, propKey: 3, enumInit: -3, enumItem: 3, funcEnd: 12}
	toolsCl100k = toolCosts{funcInit: 10, propInit: 3, propKey: 3, enumInit: -3, enumItem: 3, funcEnd: 12}
)

// Image token costs.
const (
	imageLow          = 85   // OpenAI, detail "low", and the base of "high"
	imagePerTile      = 170  // OpenAI, per 512-px tile at detail "high"
	imageUnknown      = 765  // OpenAI, a 1024×1024 image at detail "high"
	claudeImageMax    = 1600 // Anthropic, the most an image costs
	claudePixelsPerTk = 750  // Anthropic, tokens = width × height / 750
)

// Request estimates the prompt tokens of req for model: its messages,
// tool definitions and images, as described in the package doc.
func Request(model string, req *llm.Request) int {
	if req == nil {
		return 0
	}
	f := familyOf(model)
	text := replyStart
	fixed := 0
	for _, m := range req.Messages {
		text += perMessage + perRole
		if m.Name != "" {
			text += f.count(m.Name) + perName
		}
		for _, p := range m.Content {
			switch p.Type {
			case llm.PartText:
				text += f.count(p.Text)
			case llm.PartImage:
				fixed += imageTokens(f, p.Image)
			case llm.PartToolCall:
				if c := p.ToolCall; c != nil {
					text += perCall + f.count(c.Name) + f.count(c.Arguments)
				}
			case llm.PartToolResult:
				if r := p.ToolResult; r != nil {
					text += f.count(r.Content)
				}
			}
		}
	}
	text += toolTokens(f, req.Tools)
	return f.scale(text) + fixed
}

// MaxOutput returns the output-token limit the request asks for, or 0
// when it sets none.
func MaxOutput(req *llm.Request) int {
	if req == nil || req.MaxTokens == nil {
		return 0
	}
	return *req.MaxTokens
}

// toolTokens counts tool definitions with the cookbook's formula: per
// function its init cost and "name:description", and per top-level
// property its cost, "name:type:description" and its enum values.
func toolTokens(f family, tools []llm.Tool) int {
	if len(tools) == 0 {
		return 0
	}
	c := toolsCl100k
	if f.enc == o200k {
		c = toolsO200k
	}
	n := c.funcEnd
	for _, t := range tools {
		n += c.funcInit + f.count(t.Name+":"+strings.TrimSuffix(t.Description, "."))
		var schema struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if len(t.Parameters) == 0 || json.Unmarshal(t.Parameters, &schema) != nil {
			n += f.count(string(t.Parameters))
			continue
		}
		if len(schema.Properties) > 0 {
			n += c.propInit
		}
		for name, raw := range schema.Properties {
			n += c.propKey + propertyTokens(f, c, name, raw)
		}
	}
	return n
}

func propertyTokens(f family, c toolCosts, name string, raw json.RawMessage) int {
	var p struct {
		Type        json.RawMessage   `json:"type"`
		Description string            `json:"description"`
		Enum        []json.RawMessage `json:"enum"`
		Properties  json.RawMessage   `json:"properties"`
		Items       json.RawMessage   `json:"items"`
	}
	if json.Unmarshal(raw, &p) != nil {
		return f.count(name + ":" + string(raw))
	}
	n := 0
	if p.Enum != nil {
		n += c.enumInit
		for _, e := range p.Enum {
			n += c.enumItem + f.count(jsonText(e))
		}
	}
	n += f.count(name + ":" + jsonText(p.Type) + ":" + strings.TrimSuffix(p.Description, "."))
	// Nested schemas are outside the cookbook's formula: count their JSON.
	n += f.count(string(p.Properties)) + f.count(string(p.Items))
	return n
}

// jsonText returns a JSON string's value, or other JSON as written.
func jsonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// imageTokens estimates an image's cost for family f.
func imageTokens(f family, img *llm.Image) int {
	if img == nil {
		return 0
	}
	w, h := 0, 0
	if len(img.Data) > 0 {
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(img.Data)); err == nil {
			w, h = cfg.Width, cfg.Height
		}
	}
	if f.claude {
		if w == 0 || h == 0 {
			return claudeImageMax
		}
		// Anthropic resizes to a long side of at most 1568 px and at most
		// about 1.15 megapixels, keeping the aspect ratio.
		fw, fh := float64(w), float64(h)
		if s := 1568 / math.Max(fw, fh); s < 1 {
			fw, fh = fw*s, fh*s
		}
		if a := fw * fh; a > 1.15e6 {
			s := math.Sqrt(1.15e6 / a)
			fw, fh = fw*s, fh*s
		}
		return min(int(math.Ceil(fw*fh/claudePixelsPerTk)), claudeImageMax)
	}
	if strings.EqualFold(img.Detail, "low") {
		return imageLow
	}
	if w == 0 || h == 0 {
		return imageUnknown
	}
	// OpenAI fits the image in 2048×2048, then scales its shortest side
	// down to 768 px, and counts 512-px tiles.
	fw, fh := float64(w), float64(h)
	if s := 2048 / math.Max(fw, fh); s < 1 {
		fw, fh = fw*s, fh*s
	}
	if s := 768 / math.Min(fw, fh); s < 1 {
		fw, fh = fw*s, fh*s
	}
	tiles := int(math.Ceil(fw/512)) * int(math.Ceil(fh/512))
	return imageLow + imagePerTile*tiles
}
