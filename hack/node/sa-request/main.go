// sa-request sends one HTTPS request to the Kubernetes API server as the pod's ServiceAccount, the way a
// client library in a pod does: the mounted token, the mounted cluster CA (verified, unlike busybox's
// wget, whose TLS the API server also refuses), the `kubernetes` Service's DNS name.
//
//	sa-request METHOD PATH [BODY]     e.g. sa-request POST /apis/authentication.k8s.io/v1/selfsubjectreviews '{...}'
//
// Prints the response body; exits 1 on a transport error or a non-2xx status. Part of the e2e test image.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

const secrets = "/var/run/secrets/kubernetes.io/serviceaccount/"

func main() {
	if len(os.Args) < 3 || len(os.Args) > 4 {
		fmt.Fprintln(os.Stderr, "usage: sa-request METHOD PATH [BODY]")
		os.Exit(2)
	}
	if err := request(os.Args[1], os.Args[2], strings.Join(os.Args[3:], "")); err != nil {
		fmt.Fprintln(os.Stderr, "sa-request:", err)
		os.Exit(1)
	}
}

func request(method, path, body string) error {
	token, err := os.ReadFile(secrets + "token")
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(secrets + "ca.crt")
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("no certificate in %sca.crt", secrets)
	}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	req, err := http.NewRequest(method, "https://kubernetes.default.svc"+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return nil
}
