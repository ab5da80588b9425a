package openai

import (
	"encoding/json"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// responseEvents turns a canonical stream into the Responses API's typed
// events, each numbered by sequence_number: the lifecycle events around
// the output items, and for each item its added, delta, done sequence.
// It builds the final response as it goes, for response.completed and the
// store.
type responseEvents struct {
	resp *responseObject
	seq  int
	emit func(name string, data []byte) error

	text    *item // the open message item, if any
	textBuf []byte
	call    *item // the open function call item, if any
	calls   int
	stop    llm.StopReason
	usage   llm.Usage
}

// event is the members every streamed event shares, plus its own.
type event struct {
	Type           string          `json:"type"`
	SequenceNumber int             `json:"sequence_number"`
	Response       *responseObject `json:"response,omitempty"`
	OutputIndex    *int            `json:"output_index,omitempty"`
	ItemID         string          `json:"item_id,omitempty"`
	ContentIndex   *int            `json:"content_index,omitempty"`
	Item           *item           `json:"item,omitempty"`
	Part           *itemPart       `json:"part,omitempty"`
	Delta          *string         `json:"delta,omitempty"`
	Text           *string         `json:"text,omitempty"`
	Arguments      *string         `json:"arguments,omitempty"`
	Name           string          `json:"name,omitempty"`
	Logprobs       json.RawMessage `json:"logprobs,omitempty"`
	Code           string          `json:"code,omitempty"`
	Message        string          `json:"message,omitempty"`
}

var zero = 0

func (e *responseEvents) send(ev event) error {
	ev.SequenceNumber = e.seq
	e.seq++
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return e.emit(ev.Type, b)
}

// begin sends response.created and response.in_progress.
func (e *responseEvents) begin() error {
	if err := e.send(event{Type: "response.created", Response: e.resp}); err != nil {
		return err
	}
	return e.send(event{Type: "response.in_progress", Response: e.resp})
}

// on handles one canonical event.
func (e *responseEvents) on(ev llm.Event) error {
	switch ev.Type {
	case llm.EventText:
		if e.text == nil {
			if err := e.closeCall(); err != nil {
				return err
			}
			it := messageItem(e.resp.ID, "", "in_progress")
			e.text = &it
			idx := len(e.resp.Output)
			if err := e.send(event{Type: "response.output_item.added", OutputIndex: &idx, Item: e.text}); err != nil {
				return err
			}
			p := textPart("")
			if err := e.send(event{Type: "response.content_part.added", ItemID: it.ID, OutputIndex: &idx, ContentIndex: &zero, Part: &p}); err != nil {
				return err
			}
		}
		e.textBuf = append(e.textBuf, ev.Text...)
		idx := len(e.resp.Output)
		return e.send(event{Type: "response.output_text.delta", ItemID: e.text.ID, OutputIndex: &idx, ContentIndex: &zero,
			Delta: strp(ev.Text), Logprobs: json.RawMessage("[]")})
	case llm.EventToolCall:
		if err := e.closeText(); err != nil {
			return err
		}
		if err := e.closeCall(); err != nil {
			return err
		}
		tc := *ev.ToolCall
		it := callItem(e.resp.ID, e.calls, &tc, "", "in_progress")
		e.calls++
		e.call = &it
		idx := len(e.resp.Output)
		if err := e.send(event{Type: "response.output_item.added", OutputIndex: &idx, Item: e.call}); err != nil {
			return err
		}
		if tc.Arguments != "" {
			return e.args(tc.Arguments)
		}
	case llm.EventToolArgs:
		if e.call != nil && ev.ToolCall != nil && ev.ToolCall.Arguments != "" {
			return e.args(ev.ToolCall.Arguments)
		}
	case llm.EventStop:
		e.stop = ev.StopReason
	case llm.EventUsage:
		if ev.Usage != nil {
			e.usage = *ev.Usage
		}
	}
	return nil
}

func (e *responseEvents) args(delta string) error {
	*e.call.Arguments += delta
	idx := len(e.resp.Output)
	return e.send(event{Type: "response.function_call_arguments.delta", ItemID: e.call.ID, OutputIndex: &idx, Delta: strp(delta)})
}

// closeText ends the open message item, if any.
func (e *responseEvents) closeText() error {
	if e.text == nil {
		return nil
	}
	it, idx := e.text, len(e.resp.Output)
	e.text = nil
	text := string(e.textBuf)
	p := textPart(text)
	if err := e.send(event{Type: "response.output_text.done", ItemID: it.ID, OutputIndex: &idx, ContentIndex: &zero, Text: &text, Logprobs: json.RawMessage("[]")}); err != nil {
		return err
	}
	if err := e.send(event{Type: "response.content_part.done", ItemID: it.ID, OutputIndex: &idx, ContentIndex: &zero, Part: &p}); err != nil {
		return err
	}
	it.Status, it.Content = "completed", []itemPart{p}
	e.resp.Output = append(e.resp.Output, *it)
	return e.send(event{Type: "response.output_item.done", OutputIndex: &idx, Item: it})
}

// closeCall ends the open function call item, if any.
func (e *responseEvents) closeCall() error {
	if e.call == nil {
		return nil
	}
	it, idx := e.call, len(e.resp.Output)
	e.call = nil
	if err := e.send(event{Type: "response.function_call_arguments.done", ItemID: it.ID, OutputIndex: &idx, Arguments: it.Arguments, Name: it.Name}); err != nil {
		return err
	}
	it.Status = "completed"
	e.resp.Output = append(e.resp.Output, *it)
	return e.send(event{Type: "response.output_item.done", OutputIndex: &idx, Item: it})
}

// close closes the open items and settles the response's outcome.
func (e *responseEvents) close() error {
	if err := e.closeText(); err != nil {
		return err
	}
	if err := e.closeCall(); err != nil {
		return err
	}
	e.resp.finish(e.stop, e.usage)
	return nil
}

// completed sends response.completed, or response.incomplete when the
// answer was cut short; close comes first.
func (e *responseEvents) completed() error {
	name := "response.completed"
	if e.resp.Status == "incomplete" {
		name = "response.incomplete"
	}
	return e.send(event{Type: name, Response: e.resp})
}

// fail sends the error event for a stream that broke: the client is told,
// never left with a stream that looks finished.
func (e *responseEvents) fail(err *llm.Error) error {
	code := err.Code
	if code == "" {
		code = string(err.Type)
	}
	return e.send(event{Type: "error", Code: code, Message: err.Public()})
}
