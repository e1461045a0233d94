#pragma once

// A test issuer of JSON Web Tokens: what an app's auth service does, minted
// with libjwt, plus an RSA key pair made with OpenSSL's EVP API and the
// base64url encoding for tokens no issuer would sign (alg none, odd headers).
#include <jwt.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tether_test {

/// `claims` signed with `alg` and `key` (an HS secret or an RS private key PEM), by libjwt.
inline std::string mint_jwt(jwt_alg_t alg, const std::string& key, const nlohmann::json& claims) {
    jwt_t* j = nullptr;
    if (jwt_new(&j) != 0) throw std::runtime_error("jwt_new failed");
    std::unique_ptr<jwt_t, decltype(&jwt_free)> owned{j, &jwt_free};
    if (jwt_add_grants_json(j, claims.dump().c_str()) != 0) throw std::runtime_error("jwt_add_grants_json failed");
    if (jwt_set_alg(j, alg, reinterpret_cast<const unsigned char*>(key.data()), static_cast<int>(key.size())) != 0)
        throw std::runtime_error("jwt_set_alg failed");
    char* text = jwt_encode_str(j);
    if (text == nullptr) throw std::runtime_error("jwt_encode_str failed");
    std::string out{text};
    std::free(text);
    return out;
}

/// As `mint_jwt`, with `kid` in the header.
inline std::string mint_jwt(jwt_alg_t alg, const std::string& key, const nlohmann::json& claims, const std::string& kid) {
    jwt_t* j = nullptr;
    if (jwt_new(&j) != 0) throw std::runtime_error("jwt_new failed");
    std::unique_ptr<jwt_t, decltype(&jwt_free)> owned{j, &jwt_free};
    if (jwt_add_grants_json(j, claims.dump().c_str()) != 0) throw std::runtime_error("jwt_add_grants_json failed");
    if (jwt_add_header(j, "kid", kid.c_str()) != 0) throw std::runtime_error("jwt_add_header failed");
    if (jwt_set_alg(j, alg, reinterpret_cast<const unsigned char*>(key.data()), static_cast<int>(key.size())) != 0)
        throw std::runtime_error("jwt_set_alg failed");
    char* text = jwt_encode_str(j);
    if (text == nullptr) throw std::runtime_error("jwt_encode_str failed");
    std::string out{text};
    std::free(text);
    return out;
}

/// An RSA key pair in PEM: the private key (for the issuer) and the public one (for the verifier).
struct rsa_pem_pair {
    std::string private_pem;
    std::string public_pem;
};

/// A fresh 2048-bit RSA key pair.
inline rsa_pem_pair make_rsa_key_pair() {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{EVP_RSA_gen(2048), &EVP_PKEY_free};
    if (!key) throw std::runtime_error("EVP_RSA_gen failed");
    auto to_pem = [&](bool priv) {
        std::unique_ptr<BIO, decltype(&BIO_free)> bio{BIO_new(BIO_s_mem()), &BIO_free};
        const int ok = priv ? PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr)
                            : PEM_write_bio_PUBKEY(bio.get(), key.get());
        if (ok != 1) throw std::runtime_error("PEM_write_bio failed");
        char* data = nullptr;
        const long n = BIO_get_mem_data(bio.get(), &data);
        return std::string{data, static_cast<std::size_t>(n)};
    };
    return {to_pem(true), to_pem(false)};
}

/// `bytes` in base64url without padding.
inline std::string base64url(std::string_view bytes) {
    static constexpr char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const auto n = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
        for (int s = 18; s >= 0; s -= 6) out.push_back(digits[(n >> s) & 63]);
    }
    if (i + 1 == bytes.size()) {
        const auto n = static_cast<unsigned char>(bytes[i]) << 16;
        out.push_back(digits[(n >> 18) & 63]);
        out.push_back(digits[(n >> 12) & 63]);
    } else if (i + 2 == bytes.size()) {
        const auto n = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
        out.push_back(digits[(n >> 18) & 63]);
        out.push_back(digits[(n >> 12) & 63]);
        out.push_back(digits[(n >> 6) & 63]);
    }
    return out;
}

/// A token of `header` and `claims` JSON with `signature` (base64url) as given: unsigned by anyone.
inline std::string forge_jwt(const nlohmann::json& header, const nlohmann::json& claims,
                             std::string_view signature = {}) {
    return base64url(header.dump()) + "." + base64url(claims.dump()) + "." + std::string{signature};
}

}  // namespace tether_test
