# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Filters of the offline bundle and of site access (proxy, CA certificates).

Documentation of each filter lies beside this file in <filter name>.yml.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.blackwell.vllm.plugins.module_utils import bundle

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PROXY_KEYS = ("http_proxy", "https_proxy", "no_proxy")


def bundle_missing(manifest, needs):
    try:
        return bundle.manifest_missing(manifest, needs or {})
    except (KeyError, ValueError) as e:
        raise AnsibleFilterError("bundle_missing: %s" % e)


def bundle_wheelset_key(python, arch):
    try:
        return bundle.wheelset_key(python, arch)
    except ValueError as e:
        raise AnsibleFilterError("bundle_wheelset_key: %s" % e)


def fetch_environment(proxy, ca_certificates=None):
    """The environment of every task that downloads: proxy variables (both cases) and, with site CAs, the
    variables that make pip, requests, httpx and OpenSSL use the system store that holds them."""
    env = {}
    for key in PROXY_KEYS:
        value = (proxy or {}).get(key)
        if value:
            if isinstance(value, (list, tuple)):
                value = ",".join(value)
            env[key] = value
            env[key.upper()] = value
    if ca_certificates:
        for key in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "PIP_CERT", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"):
            env[key] = CA_BUNDLE
    return env


class FilterModule:
    def filters(self):
        return {"bundle_missing": bundle_missing, "bundle_wheelset_key": bundle_wheelset_key,
                "fetch_environment": fetch_environment}
