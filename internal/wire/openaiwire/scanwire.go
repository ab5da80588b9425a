package openaiwire

// The hand-written decoders below fill ChatResponse and Chunk as
// json.Unmarshal fills them from a zero value, field for field, for the
// documents a scan accepts; they report false for anything else, which then
// takes json.Unmarshal. scanwire_test.go fuzzes that agreement. They save
// the reflection of encoding/json on every upstream answer and on the
// chunks of a stream that textDelta does not take (the first, the tool
// calls, the finish and the usage).
//
// encoding/json leaves a field alone on null, except that it sets
// pointers and slices to nil; since every decode starts from a zero value,
// "alone" and nil are the same here.

var (
	responseFields = []string{"id", "object", "created", "model", "choices", "usage", "system_fingerprint"}
	choiceFields   = []string{"index", "message", "finish_reason", "logprobs"}
	messageFields  = []string{"role", "content", "refusal", "tool_calls"}
	toolCallFields = []string{"index", "id", "type", "function"}
	functionFields = []string{"name", "arguments"}
	usageFields    = []string{"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details"}
	detailsFields  = []string{"cached_tokens"}
	chunkFields    = []string{"id", "object", "created", "model", "choices", "usage", "error"}
	chunkChoiceFs  = []string{"index", "delta", "finish_reason"}
	deltaFields    = []string{"role", "content", "tool_calls"}
	errorFields    = []string{"message", "type", "param", "code"}
)

// scanChatResponse fills w from a chat.completion body.
func scanChatResponse(b []byte, w *ChatResponse) bool {
	s := scan{b: b}
	return s.object(responseFields, func(field int) bool {
		switch field {
		case 0:
			return s.text(&w.ID)
		case 1:
			return s.text(&w.Object)
		case 2:
			return s.int64(&w.Created)
		case 3:
			return s.text(&w.Model)
		case 4:
			return s.nullable(func() bool {
				w.Choices = make([]Choice, 0, 1)
				return s.array(func() bool {
					w.Choices = append(w.Choices, Choice{})
					return s.choice(&w.Choices[len(w.Choices)-1])
				})
			})
		case 5:
			return s.usage(&w.Usage)
		case 6:
			return s.text(&w.SystemFingerprint)
		}
		return s.skipped()
	}) && s.end()
}

// nullable reads a null, leaving the field as it is, or else the value
// read reads.
func (s *scan) nullable(read func() bool) bool { return s.null() || read() }

func (s *scan) int64(v *int64) bool {
	n := 0
	ok := s.integer(&n)
	*v = int64(n)
	return ok
}

// choice reads an element of choices; a null element fails (encoding/json
// would give a zero choice).
func (s *scan) choice(c *Choice) bool {
	return s.object(choiceFields, func(field int) bool {
		switch field {
		case 0:
			return s.integer(&c.Index)
		case 1:
			return s.nullable(func() bool { return s.message(&c.Message) })
		case 2:
			return s.text(&c.FinishReason)
		case 3:
			var ok bool
			c.Logprobs, ok = s.skip()
			return ok
		}
		return s.skipped()
	})
}

func (s *scan) message(m *ResponseMessage) bool {
	return s.object(messageFields, func(field int) bool {
		switch field {
		case 0:
			return s.text(&m.Role)
		case 1:
			return s.textPtr(&m.Content)
		case 2:
			return s.textPtr(&m.Refusal)
		case 3:
			return s.toolCalls(&m.ToolCalls)
		}
		return s.skipped()
	})
}

func (s *scan) toolCalls(v *[]ToolCall) bool {
	return s.nullable(func() bool {
		*v = make([]ToolCall, 0, 1)
		return s.array(func() bool {
			*v = append(*v, ToolCall{})
			return s.toolCall(&(*v)[len(*v)-1])
		})
	})
}

func (s *scan) toolCall(tc *ToolCall) bool {
	return s.object(toolCallFields, func(field int) bool {
		switch field {
		case 0:
			return s.nullable(func() bool {
				n := 0
				tc.Index = &n
				return s.integer(&n)
			})
		case 1:
			return s.text(&tc.ID)
		case 2:
			return s.text(&tc.Type)
		case 3:
			return s.nullable(func() bool {
				return s.object(functionFields, func(field int) bool {
					switch field {
					case 0:
						return s.text(&tc.Function.Name)
					case 1:
						return s.text(&tc.Function.Arguments)
					}
					return s.skipped()
				})
			})
		}
		return s.skipped()
	})
}

func (s *scan) usage(v **Usage) bool {
	return s.nullable(func() bool {
		u := &Usage{}
		*v = u
		return s.object(usageFields, func(field int) bool {
			switch field {
			case 0:
				return s.integer(&u.PromptTokens)
			case 1:
				return s.integer(&u.CompletionTokens)
			case 2:
				return s.integer(&u.TotalTokens)
			case 3:
				return s.nullable(func() bool {
					d := &TokenDetails{}
					u.PromptTokensDetails = d
					return s.object(detailsFields, func(field int) bool {
						if field == 0 {
							return s.integer(&d.CachedTokens)
						}
						return s.skipped()
					})
				})
			}
			return s.skipped()
		})
	})
}

// scanChunk fills c from a chat.completion.chunk.
func scanChunk(b []byte, c *Chunk) bool {
	s := scan{b: b}
	return s.object(chunkFields, func(field int) bool {
		switch field {
		case 0:
			return s.text(&c.ID)
		case 1:
			return s.text(&c.Object)
		case 2:
			return s.int64(&c.Created)
		case 3:
			return s.text(&c.Model)
		case 4:
			return s.nullable(func() bool {
				c.Choices = make([]ChunkChoice, 0, 1)
				return s.array(func() bool {
					c.Choices = append(c.Choices, ChunkChoice{})
					return s.chunkChoice(&c.Choices[len(c.Choices)-1])
				})
			})
		case 5:
			return s.usage(&c.Usage)
		case 6:
			return s.errorBody(&c.Error)
		}
		return s.skipped()
	}) && s.end()
}

func (s *scan) chunkChoice(c *ChunkChoice) bool {
	return s.object(chunkChoiceFs, func(field int) bool {
		switch field {
		case 0:
			return s.integer(&c.Index)
		case 1:
			return s.nullable(func() bool {
				return s.object(deltaFields, func(field int) bool {
					switch field {
					case 0:
						return s.text(&c.Delta.Role)
					case 1:
						return s.textPtr(&c.Delta.Content)
					case 2:
						return s.toolCalls(&c.Delta.ToolCalls)
					}
					return s.skipped()
				})
			})
		case 2:
			return s.textPtr(&c.FinishReason)
		}
		return s.skipped()
	})
}

func (s *scan) errorBody(v **ErrorBody) bool {
	return s.nullable(func() bool {
		e := &ErrorBody{}
		*v = e
		return s.object(errorFields, func(field int) bool {
			switch field {
			case 0:
				return s.text(&e.Message)
			case 1:
				return s.text(&e.Type)
			case 2:
				return s.textPtr(&e.Param)
			case 3:
				return s.textPtr(&e.Code)
			}
			return s.skipped()
		})
	})
}
