// The e2e test image's API client (standard library only).
module modelops.io/hack/node/sa-request

go 1.26.0
