package bedrockwire

import (
	"encoding/base64"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// EventChunk is the event of an InvokeModelWithResponseStream answer: its
// payload is {"bytes":"<base64>"}, the bytes one native JSON chunk of the
// model's own streaming format.
const EventChunk = "chunk"

var hdrChunk = eventHeaders(EventChunk)

// ChunkWriter writes InvokeModelWithResponseStream chunk events. It is not
// safe for concurrent use; flushing is the caller's.
type ChunkWriter struct {
	w   io.Writer
	enc *eventstream.Encoder
	buf []byte
}

// NewChunkWriter returns a ChunkWriter writing to w.
func NewChunkWriter(w io.Writer) *ChunkWriter {
	return &ChunkWriter{w: w, enc: eventstream.NewEncoder()}
}

// Write sends one native chunk.
func (c *ChunkWriter) Write(native []byte) error {
	b := append(c.buf[:0], `{"bytes":"`...)
	b = base64.StdEncoding.AppendEncode(b, native)
	b = append(b, `"}`...)
	c.buf = b
	return c.enc.Encode(c.w, eventstream.Message{Headers: hdrChunk, Payload: b})
}

// Exception ends the stream with an exception message, as StreamWriter's.
func (c *ChunkWriter) Exception(e *llm.Error) error {
	return (&StreamWriter{w: c.w, enc: c.enc}).Exception(e)
}
