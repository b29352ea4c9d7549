package main

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadResponse(t *testing.T) {
	const next = "NEXT"
	tests := []struct {
		name       string
		in         string
		wantStatus int
		wantKeep   bool
		wantErr    error // nil: any error fails
		anyErr     bool
	}{
		{name: "content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: application/json\r\n\r\nhello" + next, wantStatus: 200, wantKeep: true},
		{name: "header case and spacing", in: "HTTP/1.1 200 OK\r\ncontent-length:   3  \r\n\r\nabc" + next, wantStatus: 200, wantKeep: true},
		{name: "bare LF", in: "HTTP/1.1 200 OK\nContent-Length: 2\n\nhi" + next, wantStatus: 200, wantKeep: true},
		{name: "chunked with trailer", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n" + next, wantStatus: 200, wantKeep: true},
		{name: "not found keeps the connection", in: "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n" + next, wantStatus: 404, wantKeep: true},
		{name: "connection close", in: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx" + next, wantStatus: 200, wantKeep: false},
		{name: "HTTP/1.0 closes", in: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx" + next, wantStatus: 200, wantKeep: false},
		{name: "no framing reads to EOF", in: "HTTP/1.1 200 OK\r\n\r\nbody", wantStatus: 200, wantKeep: false},
		{name: "204 has no body", in: "HTTP/1.1 204 No Content\r\n\r\n" + next, wantStatus: 204, wantKeep: true},
		{name: "garbage status line", in: "SSH-2.0-OpenSSH\r\n\r\n", anyErr: true, wantErr: errMalformed},
		{name: "bad content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", anyErr: true, wantErr: errMalformed},
		{name: "header without colon", in: "HTTP/1.1 200 OK\r\nbroken\r\n\r\n", anyErr: true, wantErr: errMalformed},
		{name: "truncated head", in: "HTTP/1.1 200 OK\r\nContent-Len", anyErr: true, wantErr: io.ErrUnexpectedEOF},
		{name: "truncated body", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", anyErr: true, wantErr: io.EOF},
		{name: "bad chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", anyErr: true, wantErr: errMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(tt.in))
			status, keep, err := readResponse(br)
			if tt.anyErr {
				if err == nil || !errors.Is(err, tt.wantErr) {
					t.Fatalf("readResponse(%q) error = %v, want %v", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("readResponse(%q) error = %v", tt.in, err)
			}
			if status != tt.wantStatus || keep != tt.wantKeep {
				t.Errorf("readResponse(%q) = %d, %v, want %d, %v", tt.in, status, keep, tt.wantStatus, tt.wantKeep)
			}
			if keep {
				// The whole response, and nothing more, must have been read.
				rest, _ := io.ReadAll(br)
				if string(rest) != next {
					t.Errorf("readResponse(%q) left %q unread, want %q", tt.in, rest, next)
				}
			}
		})
	}
}
