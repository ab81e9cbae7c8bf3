module github.com/uringaio/uringaio/pebblefs

go 1.23.0

replace github.com/uringaio/uringaio => ../

require (
	github.com/cockroachdb/pebble/v2 v2.1.7
	github.com/uringaio/uringaio v0.0.0-00010101000000-000000000000
)

require (
	github.com/cockroachdb/crlib v0.0.0-20241112164430-1264a2edc35b // indirect
	github.com/cockroachdb/errors v1.11.3 // indirect
	github.com/cockroachdb/logtags v0.0.0-20230118201751-21c54148d20b // indirect
	github.com/cockroachdb/redact v1.1.5 // indirect
	github.com/getsentry/sentry-go v0.27.0 // indirect
	github.com/gogo/protobuf v1.3.2 // indirect
	github.com/kr/pretty v0.3.1 // indirect
	github.com/kr/text v0.2.0 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/rogpeppe/go-internal v1.9.0 // indirect
	golang.org/x/sys v0.35.0 // indirect
	golang.org/x/text v0.14.0 // indirect
)
