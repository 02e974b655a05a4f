package controller

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// maxArray caps every array the API stores, as zerotier-one's controller does.
const maxArray = 16384

// Records are written the way zerotier-one's nlohmann::json writes them: compact, keys in byte
// order, no HTML escaping, and fields this package does not know kept as they were read.

// encodeJSON marshals v compactly without HTML escaping.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// marshalRecord encodes a record struct with its keys sorted, adding the unknown fields it was
// read with.
func marshalRecord(v any, extra map[string]json.RawMessage) ([]byte, error) {
	b, err := encodeJSON(v)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range extra {
		if _, known := m[k]; !known {
			m[k] = v
		}
	}
	return encodeJSON(m) // maps encode with sorted keys
}

// unmarshalRecord decodes a record object into v (numbers in untyped fields as json.Number)
// and returns the keys present and the fields v does not know.
func unmarshalRecord(b []byte, v any) (present map[string]bool, extra map[string]json.RawMessage, err error) {
	var m map[string]json.RawMessage
	err = json.Unmarshal(b, &m)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) || (err == nil && m == nil) {
		return nil, nil, errors.New("not a JSON object")
	}
	if err != nil {
		return nil, nil, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, nil, fmt.Errorf("field %q: %s is not a valid %s", te.Field, te.Value, te.Type)
		}
		return nil, nil, err
	}
	known := fieldNames(reflect.TypeOf(v).Elem())
	present = make(map[string]bool, len(m))
	for k, raw := range m {
		present[k] = true
		if !known[k] {
			if extra == nil {
				extra = map[string]json.RawMessage{}
			}
			extra[k] = raw
		}
	}
	return present, extra, nil
}

// fieldNames lists the JSON names of a struct's fields.
func fieldNames(t reflect.Type) map[string]bool {
	names := map[string]bool{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names[name] = true
		}
	}
	return names
}
