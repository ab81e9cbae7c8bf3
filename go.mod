module github.com/uringaio/uringaio

go 1.23.0

require (
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.35.0
)
