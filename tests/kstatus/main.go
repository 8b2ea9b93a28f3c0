// Command kstatus prints what kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status), the library
// Flux and kpt read health with, computes for each object it is given: a test helper, not part of
// the operator.
//
// Input on stdin: Kubernetes objects as JSON, either one JSON array of them or a stream of objects
// (one a line, or simply one after the other). Output: one JSON line per object, in order:
// {"status": "Current", "message": "Resource is current"}.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	objects, err := read(bufio.NewReader(in))
	if err != nil {
		return err
	}
	encoder := json.NewEncoder(out)
	for i, raw := range objects {
		// Unstructured's own decoding keeps integers as int64, as kstatus reads
		// metadata.generation and status.observedGeneration (plain encoding/json gives float64).
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			return fmt.Errorf("object %d: %w", i, err)
		}
		res, err := status.Compute(u)
		if err != nil {
			return fmt.Errorf("object %d: %w", i, err)
		}
		if err := encoder.Encode(result{Status: res.Status.String(), Message: res.Message}); err != nil {
			return err
		}
	}
	return nil
}

// read returns the objects of a JSON array, or of a stream of JSON objects.
func read(in *bufio.Reader) ([]json.RawMessage, error) {
	first, err := firstByte(in)
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	decoder := json.NewDecoder(in)
	if first == '[' {
		var objects []json.RawMessage
		if err := decoder.Decode(&objects); err != nil {
			return nil, fmt.Errorf("reading a JSON array: %w", err)
		}
		return objects, nil
	}
	var objects []json.RawMessage
	for {
		var raw json.RawMessage
		err := decoder.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return objects, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading object %d: %w", len(objects), err)
		}
		objects = append(objects, raw)
	}
}

// firstByte peeks at the first byte that is not white space, leaving it unread.
func firstByte(in *bufio.Reader) (byte, error) {
	for {
		b, err := in.ReadByte()
		if err != nil {
			return 0, err
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return b, in.UnreadByte()
	}
}
