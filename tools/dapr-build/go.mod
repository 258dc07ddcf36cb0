// Wrapper module used by scripts/build_dapr.sh to build daprd, placement and
// scheduler from github.com/dapr/dapr v1.18.2. `go install ...@v1.18.2` is
// refused because dapr's go.mod has replace directives, so they are repeated
// here. Build with `go build -mod=mod`; never run `go mod tidy` (it walks every
// build tag and needs checksum look-ups this machine cannot make).
module pushpop/tools/dapr-build

go 1.26.5

require github.com/dapr/dapr v1.18.2

// Copied from github.com/dapr/dapr v1.18.2 go.mod.
replace (
	// this is a fork which addresses a performance issues due to go routines
	dubbo.apache.org/dubbo-go/v3 => dubbo.apache.org/dubbo-go/v3 v3.0.3-0.20230118042253-4f159a2b38f3

	gopkg.in/couchbaselabs/gocbconnstr.v1 => github.com/couchbaselabs/gocbconnstr v1.0.5
)

// Copied from github.com/dapr/dapr v1.18.2 go.mod.
replace (
	github.com/chenzhuoyu/iasm => github.com/chenzhuoyu/iasm v0.9.0
	github.com/chzyer/logex => github.com/chzyer/logex v1.2.1
	github.com/gobwas/pool => github.com/gobwas/pool v0.2.1
	github.com/toolkits/concurrent => github.com/niean/gotools v0.0.0-20151221085310-ff3f51fc5c60
)
