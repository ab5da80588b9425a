package llm

import (
	"encoding/json"
	"fmt"
)

// JSONProblem turns an encoding/json error into a short reason a client
// can act on ("max_tokens must be an integer, not string"), for the
// 400s every inbound surface writes.
func JSONProblem(err error) string {
	if te, ok := err.(*json.UnmarshalTypeError); ok {
		kind := kindName(te.Type.Kind().String())
		if te.Field != "" {
			return fmt.Sprintf("%s must be %s, not %s", te.Field, kind, te.Value)
		}
		return fmt.Sprintf("must be %s, not %s", kind, te.Value)
	}
	return err.Error()
}

func kindName(k string) string {
	switch k {
	case "string":
		return "a string"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64", "ptr":
		return "a number"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return k
}
