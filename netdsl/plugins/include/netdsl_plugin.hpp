// netdsl_plugin.hpp: what a plugin's cpu.cpp (the compiled CPU route) sees.
//
// A plugin's C++ CPU code defines ONE function (declared at the end of this header, C linkage):
//
//     #include "netdsl_plugin.hpp"
//     void netdsl_compute(const netdsl::Inputs& in, netdsl::Outputs& out, const netdsl::Attrs& attrs);
//
// netdsl generates the OpenVINO op around it (type name, version, attributes, shape inference from
// the declaration) and builds both with CMake against the `openvino` wheel. When netdsl_compute is
// called, every output is allocated with the shape and type that the declared shape inference gives;
// the function fills out[k] from in[i] and attrs. It may throw (std::exception): the message
// reaches the user with the plugin's name.
//
// Types: netdsl::DType names the element type; T* data = tensor.ptr<T>() checks it (float,
// netdsl::float16, double, int32_t, int64_t, int8_t, uint8_t, bool). netdsl::dispatch_float runs a
// generic lambda with the tensor's float type:
//
//     netdsl::dispatch_float(in[0].dtype, [&](auto zero) {
//         using T = decltype(zero);
//         const T* x = in[0].ptr<T>(); T* y = out[0].ptr<T>();
//         for (int64_t i = 0; i < in[0].numel(); ++i) y[i] = T(f(float(x[i])));
//     });
//
// Attributes keep the declared kinds: attrs.i("block") (int -> int64_t), attrs.f("alpha")
// (float -> double), attrs.b(...) (bool), attrs.s(...) (str), attrs.ints(...) (std::vector<int64_t>),
// attrs.floats(...) (std::vector<double>).
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <openvino/core/type/float16.hpp>

namespace netdsl {

using float16 = ov::float16;

enum class DType { float32, float16, float64, int8, uint8, int32, int64, boolean, bfloat16 };

inline const char* dtype_name(DType t) {
    switch (t) {
        case DType::float32: return "float32";
        case DType::float16: return "float16";
        case DType::float64: return "float64";
        case DType::int8: return "int8";
        case DType::uint8: return "uint8";
        case DType::int32: return "int32";
        case DType::int64: return "int64";
        case DType::boolean: return "bool";
        case DType::bfloat16: return "bfloat16";
    }
    return "?";
}

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::float32; };
template <> struct dtype_of<float16> { static constexpr DType value = DType::float16; };
template <> struct dtype_of<double> { static constexpr DType value = DType::float64; };
template <> struct dtype_of<int8_t> { static constexpr DType value = DType::int8; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::uint8; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::int32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::int64; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::boolean; };

// A dense, row-major tensor owned by the engine.
struct Tensor {
    void* data = nullptr;
    DType dtype = DType::float32;
    std::vector<int64_t> shape;

    int rank() const { return static_cast<int>(shape.size()); }
    // dim(-1) is the last dimension.
    int64_t dim(int i) const { return shape.at(i < 0 ? i + rank() : i); }
    int64_t numel() const {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        return n;
    }
    template <class T> T* ptr() const {
        if (dtype_of<T>::value != dtype)
            throw std::runtime_error(std::string("tensor holds ") + dtype_name(dtype) + ", not " +
                                     dtype_name(dtype_of<T>::value));
        return static_cast<T*>(data);
    }
};

using Inputs = std::vector<Tensor>;
using Outputs = std::vector<Tensor>;

// The node's attributes, by the names the declaration gives them.
class Attrs {
public:
    int64_t i(const std::string& k) const { return get(ints_, k, "int"); }
    double f(const std::string& k) const { return get(floats_, k, "float"); }
    bool b(const std::string& k) const { return get(bools_, k, "bool"); }
    const std::string& s(const std::string& k) const { return get(strs_, k, "str"); }
    const std::vector<int64_t>& ints(const std::string& k) const { return get(int_lists_, k, "ints"); }
    const std::vector<double>& floats(const std::string& k) const { return get(float_lists_, k, "floats"); }

    void set(const std::string& k, int64_t v) { ints_[k] = v; }
    void set(const std::string& k, double v) { floats_[k] = v; }
    void set(const std::string& k, bool v) { bools_[k] = v; }
    void set(const std::string& k, const std::string& v) { strs_[k] = v; }
    void set(const std::string& k, const std::vector<int64_t>& v) { int_lists_[k] = v; }
    void set(const std::string& k, const std::vector<double>& v) { float_lists_[k] = v; }

private:
    template <class M>
    static const typename M::mapped_type& get(const M& m, const std::string& k, const char* kind) {
        auto it = m.find(k);
        if (it == m.end()) throw std::runtime_error("no " + std::string(kind) + " attribute '" + k + "'");
        return it->second;
    }
    std::map<std::string, int64_t> ints_;
    std::map<std::string, double> floats_;
    std::map<std::string, bool> bools_;
    std::map<std::string, std::string> strs_;
    std::map<std::string, std::vector<int64_t>> int_lists_;
    std::map<std::string, std::vector<double>> float_lists_;
};

// Calls fn(T{}) with T = float, netdsl::float16 or double for the given dtype.
template <class F> void dispatch_float(DType t, F&& fn) {
    switch (t) {
        case DType::float32: fn(float{}); return;
        case DType::float16: fn(float16{}); return;
        case DType::float64: fn(double{}); return;
        default: throw std::runtime_error(std::string("no CPU code for element type ") + dtype_name(t));
    }
}

}  // namespace netdsl

// What cpu.cpp defines. C linkage: a definition with another signature is a compile error naming the
// line, rather than a library that builds and then fails to load with an undefined symbol.
extern "C" void netdsl_compute(const netdsl::Inputs& in, netdsl::Outputs& out, const netdsl::Attrs& attrs);
