// What a `results` target names (a run id, an s3:// URI, a presigned URL) and with which keys to fetch it:
// the storage credential chain and the run-id rule live here, so that a caller resolves once and downloads.
#include <fmt/format.h>

#include "impact/credentials.hpp"
#include "impact/error.hpp"
#include "impact/paths.hpp"
#include "impact/storage.hpp"
#include "impact/wes.hpp"

namespace impact::storage {
namespace {

using Range = std::optional<std::pair<std::uint64_t, std::uint64_t>>;

// The keys and the client that signs with them: shared by the request factory and the checksum look-up,
// and kept alive by them for as long as the download runs.
struct Signer {
  std::unique_ptr<CredentialSource> creds;
  std::unique_ptr<S3Client> s3;
};

http::Request presigned_request(const std::string& url, const Range& range) {
  http::Request r;  // no Authorization: a presigned URL carries its own signature
  r.url = url;
  if (range) r.headers.push_back({"Range", fmt::format("bytes={}-{}", range->first, range->second)});
  return r;
}

void sign_with(Resolution& r, std::shared_ptr<Signer> signer) {
  r.make_request = [signer, bucket = r.bucket](const ObjectInfo& ob, Range range) {
    return signer->s3->get_request(bucket, ob.key, range);
  };
  r.full_checksum = [signer, bucket = r.bucket](ObjectInfo& ob) { ob.checksums = signer->s3->head(bucket, ob.key).checksums; };
}

void fetch_presigned(Resolution& r, std::map<std::string, std::string> urls) {
  r.bucket.clear();
  r.make_request = [urls = std::move(urls)](const ObjectInfo& ob, Range range) { return presigned_request(urls.at(ob.key), range); };
  r.full_checksum = nullptr;
}

// A run's outputs in WES (GET /runs/{id}): the objects they name in the storage, or their presigned URLs.
void resolve_run_outputs(const ResolveInput& in, const std::shared_ptr<Signer>& signer, Resolution& r) {
  const Profile& p = *in.profile;
  http::Client http(in.http);
  wes::TokenFn token;
  if (in.login != nullptr) token = [login = in.login, url = p.wes] { return login->bearer_token(url); };
  wes::Client client(http, p.wes, std::move(token));
  const wes::RunLog run = client.get(r.run_id);
  const std::string endpoint = p.storage ? p.storage->url : std::string();
  auto found = find_output_objects(run.outputs, endpoint);
  r.from_outputs = true;
  if (!found.presigned.empty() && (found.objects.empty() || !signer)) {
    // Presigned URLs (WESkit's outputs.S3): fetched as they are, with no keys and no token.
    for (const auto& o : found.objects) found.skipped.push_back({o.url, "in the object storage, which the profile does not name", ""});
    auto pre = resolve_presigned(found.presigned, in.http, found.skipped);
    r.prefix = pre.prefix;
    r.objects = std::move(pre.objects);
    r.skipped = std::move(found.skipped);
    fetch_presigned(r, std::move(pre.urls));
    return;
  }
  for (const auto& url : found.presigned)
    found.skipped.push_back({url, "a presigned URL beside outputs in the storage", url});
  if (!signer)
    throw Error(ErrorKind::config,
                fmt::format("profile '{}' has no object storage, and run {} has no presigned outputs", p.name, r.run_id))
        .with_remedy(Remedy::run_show)
        .with_fact("run_id", r.run_id);
  const std::string searched = r.bucket;
  auto res = resolve_outputs(*signer->s3, found, p.storage->bucket);
  r.skipped = std::move(found.skipped);
  if (res.objects.empty()) {
    throw Error(ErrorKind::not_found,
                fmt::format("nothing to download for run {}: {}its outputs name no object in the storage{}", r.run_id,
                            searched.empty() ? "" : fmt::format("nothing under s3://{}/{}, and ", searched, r.prefix),
                            r.skipped.empty() ? "" : fmt::format(" ({} elsewhere)", r.skipped.size())))
        .with_remedy(wes::is_terminal(run.state) ? Remedy::run_show : Remedy::run_wait)
        .with_fact("run_id", r.run_id)
        .with_fact("state", wes::to_string(run.state));
  }
  r.bucket = res.bucket;
  r.prefix = res.prefix;
  r.objects = std::move(res.objects);
  sign_with(r, signer);
}

Resolution resolve_presigned_url(const ResolveInput& in) {
  Resolution r;
  auto o = probe_presigned(in.target, in.http);
  r.prefix = o.key;
  r.objects = {o};
  fetch_presigned(r, {{o.key, in.target}});
  return r;
}

}  // namespace

std::unique_ptr<CredentialSource> credential_chain(const Profile& p, auth::Credentials* login, const http::Options& http,
                                                   const std::filesystem::path& sts_cache) {
  if (!p.storage || p.storage->url.empty())
    throw Error(ErrorKind::config, "profile '" + p.name + "' has no object storage").with_remedy(Remedy::profile_show);
  const StorageConfig& st = *p.storage;
  if (auto keys = keys_from_environment()) return keys;
  if (!st.keys_file.empty()) return keys_from_file(st.keys_file);
  if (!st.sts.empty() && login != nullptr) {
    StsOptions o;
    o.sts_url = st.sts;
    o.web_identity_token = [login, url = st.sts] { return login->bearer_token(url); };
    o.cache_file = sts_cache.empty() ? cache_home() / "s3" / (p.name + ".json") : sts_cache;
    return sts_keys(http, std::move(o));
  }
  throw Error(ErrorKind::auth_required, "no credentials for the object storage",
              "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or storage.sts in the profile and log in");
}

Resolution resolve(const ResolveInput& in) {
  if (is_presigned_url(in.target)) return resolve_presigned_url(in);
  if (in.profile == nullptr) throw Error(ErrorKind::config, "no profile to resolve " + in.target + " with");
  const Profile& p = *in.profile;
  const bool has_storage = p.storage && !p.storage->url.empty();
  const auto uri = parse_s3_uri(in.target);
  Resolution r;
  if (!has_storage && !p.wes.empty() && !uri) {
    // A run id with no storage profile: only its presigned outputs can be fetched (no keys needed).
    check_run_id(in.target);
    r.run_id = in.target;
    resolve_run_outputs(in, nullptr, r);
    return r;
  }
  if (!has_storage) throw Error(ErrorKind::config, "profile '" + p.name + "' has no object storage").with_remedy(Remedy::profile_show);
  if (!uri) {
    check_run_id(in.target);
    r.run_id = in.target;
  }
  auto signer = std::make_shared<Signer>();
  signer->creds = credential_chain(p, in.login, in.http, in.sts_cache);
  signer->s3 = std::make_unique<S3Client>(p.storage->url, p.storage->region, *signer->creds, in.http);
  const StorageConfig& st = *p.storage;
  if (uri) {
    r.bucket = uri->bucket;
    r.prefix = uri->key;
  } else if (!st.result_prefix.empty() && (!st.bucket.empty() || p.wes.empty())) {
    const Location where = run_location(st, r.run_id);
    r.bucket = where.bucket;
    r.prefix = where.key;
  }
  if (!r.run_id.empty() && r.bucket.empty()) {
    if (p.wes.empty())
      throw Error(ErrorKind::config,
                  "cannot find the results of run " + r.run_id + ": the profile has no storage.result_prefix and no WES service",
                  "set storage.result_prefix in the profile, or give s3://BUCKET/PREFIX");
    resolve_run_outputs(in, signer, r);
    return r;
  }
  sign_with(r, signer);
  if (!r.prefix.empty() && r.prefix.back() != '/') {
    try {
      r.objects = {signer->s3->head(r.bucket, r.prefix)};
      return r;
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::not_found) throw;
      r.prefix += '/';
    }
  }
  // The first page that holds anything: the rest is pulled as the download goes.
  auto pages = signer->s3->list_pages(r.bucket, r.prefix);
  while (auto page = pages()) {
    if (page->empty()) continue;
    r.objects = std::move(*page);
    r.more = [signer, pages = std::move(pages)] { return pages(); };
    break;
  }
  if (r.objects.empty() && !r.run_id.empty() && !p.wes.empty()) {
    resolve_run_outputs(in, signer, r);
    return r;
  }
  if (r.objects.empty())
    throw Error(ErrorKind::not_found, fmt::format("nothing at s3://{}/{}", r.bucket, r.prefix)).with_remedy(Remedy::run_status);
  return r;
}

ObjectPages pages_of(Resolution& r) {
  return [&r, first = true]() mutable -> std::optional<std::vector<ObjectInfo>> {
    if (first) {
      first = false;
      return std::move(r.objects);
    }
    if (r.more) return r.more();
    return std::nullopt;
  };
}

void read_all(Resolution& r) {
  if (!r.more) return;
  while (auto page = r.more())
    for (auto& o : *page) r.objects.push_back(std::move(o));
  r.more = nullptr;
}

}  // namespace impact::storage
