module github.com/uringaio/uringaio/bench

go 1.23.0

require (
	github.com/HdrHistogram/hdrhistogram-go v1.4.0
	github.com/uringaio/uringaio v0.1.0
	golang.org/x/sys v0.35.0
)

