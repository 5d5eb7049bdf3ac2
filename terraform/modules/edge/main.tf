# Custom URLs: https://<service>.<apps_domain> reaches the Cloud Run service
# <service>, for every app, with nothing here changing when an app is added:
# a wildcard DNS record points at one global Application Load Balancer whose
# serverless NEG maps the host name to a service name (url_mask).

resource "google_compute_global_address" "apps" {
  project = var.project
  name    = "devgem-apps"
}

resource "google_dns_record_set" "wildcard" {
  project      = var.project
  managed_zone = var.dns_zone_name
  name         = "*.${var.apps_domain}."
  type         = "A"
  ttl          = 300
  rrdatas      = [google_compute_global_address.apps.address]
}

# A wildcard certificate needs DNS authorization: Certificate Manager asks for
# a CNAME under _acme-challenge, which goes into the same zone.
resource "google_certificate_manager_dns_authorization" "apps" {
  project = var.project
  name    = "devgem-apps"
  domain  = var.apps_domain
  labels  = var.labels
}

resource "google_dns_record_set" "dns_authorization" {
  project      = var.project
  managed_zone = var.dns_zone_name
  name         = google_certificate_manager_dns_authorization.apps.dns_resource_record[0].name
  type         = google_certificate_manager_dns_authorization.apps.dns_resource_record[0].type
  ttl          = 300
  rrdatas      = [google_certificate_manager_dns_authorization.apps.dns_resource_record[0].data]
}

resource "google_certificate_manager_certificate" "apps" {
  project = var.project
  name    = "devgem-apps"
  labels  = var.labels
  scope   = "DEFAULT"

  managed {
    domains            = ["*.${var.apps_domain}"]
    dns_authorizations = [google_certificate_manager_dns_authorization.apps.id]
  }
}

resource "google_certificate_manager_certificate_map" "apps" {
  project = var.project
  name    = "devgem-apps"
  labels  = var.labels
}

resource "google_certificate_manager_certificate_map_entry" "apps" {
  project      = var.project
  name         = "devgem-apps-wildcard"
  map          = google_certificate_manager_certificate_map.apps.name
  certificates = [google_certificate_manager_certificate.apps.id]
  hostname     = "*.${var.apps_domain}"
  labels       = var.labels
}

resource "google_compute_region_network_endpoint_group" "apps" {
  project               = var.project
  name                  = "devgem-apps"
  region                = var.region
  network_endpoint_type = "SERVERLESS"

  cloud_run {
    url_mask = "<service>.${var.apps_domain}"
  }
}

resource "google_compute_backend_service" "apps" {
  project               = var.project
  name                  = "devgem-apps"
  load_balancing_scheme = "EXTERNAL_MANAGED"

  backend {
    group = google_compute_region_network_endpoint_group.apps.id
  }

  log_config {
    enable      = true
    sample_rate = 0.1
  }
}

resource "google_compute_url_map" "apps" {
  project         = var.project
  name            = "devgem-apps"
  default_service = google_compute_backend_service.apps.id
}

resource "google_compute_ssl_policy" "apps" {
  project         = var.project
  name            = "devgem-apps"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
}

resource "google_compute_target_https_proxy" "apps" {
  project         = var.project
  name            = "devgem-apps"
  url_map         = google_compute_url_map.apps.id
  certificate_map = "//certificatemanager.googleapis.com/${google_certificate_manager_certificate_map.apps.id}"
  ssl_policy      = google_compute_ssl_policy.apps.id
}

resource "google_compute_global_forwarding_rule" "https" {
  project               = var.project
  name                  = "devgem-apps-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.apps.id
  ip_protocol           = "TCP"
  port_range            = "443"
  target                = google_compute_target_https_proxy.apps.id
}

# Plain HTTP only redirects to HTTPS.
resource "google_compute_url_map" "http_redirect" {
  project = var.project
  name    = "devgem-apps-http-redirect"

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "http_redirect" {
  project = var.project
  name    = "devgem-apps-http-redirect"
  url_map = google_compute_url_map.http_redirect.id
}

resource "google_compute_global_forwarding_rule" "http" {
  project               = var.project
  name                  = "devgem-apps-http"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.apps.id
  ip_protocol           = "TCP"
  port_range            = "80"
  target                = google_compute_target_http_proxy.http_redirect.id
}
