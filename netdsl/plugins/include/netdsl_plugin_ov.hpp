// netdsl_plugin_ov.hpp: support code for the OpenVINO op that netdsl generates around a plugin's
// netdsl_compute (see netdsl_plugin.hpp). Not for plugin authors: the generated op includes it.
//
// Shape inference: the op carries the attribute `netdsl_shapes`, the plugin's shape program (see
// netdsl/plugins/shape_program.py), e.g. "T,int32->T:d0_0:(d0_1*4);int32:d0_0": input types, then
// per output its type and its dims as expressions over input dims (d<i>_<j>), integers, + - * /
// (floor division) and cdiv(a,b) (ceiling division). The same program drives TensorRT and the
// Python op, so an IR written by either OpenVINO route loads with both.
#pragma once

#include <cstdlib>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <openvino/core/except.hpp>
#include <openvino/core/node.hpp>
#include <openvino/runtime/tensor.hpp>

#include "netdsl_plugin.hpp"

namespace netdsl {
namespace ovsupport {

struct Expr {
    enum Kind { Const, Var, Bin } kind = Const;
    int64_t value = 0;
    size_t input = 0, axis = 0;
    char op = '+';  // + - * / c (cdiv)
    std::shared_ptr<Expr> a, b;
};
using ExprPtr = std::shared_ptr<Expr>;

class ExprParser {
public:
    explicit ExprParser(const std::string& s) : s_(s) {}
    ExprPtr parse() {
        ExprPtr e = sum();
        if (p_ != s_.size()) fail("unexpected text");
        return e;
    }

private:
    ExprPtr sum() {
        ExprPtr e = product();
        while (p_ < s_.size() && (s_[p_] == '+' || s_[p_] == '-')) {
            char op = s_[p_++];
            e = bin(op, e, product());
        }
        return e;
    }
    ExprPtr product() {
        ExprPtr e = atom();
        while (p_ < s_.size() && (s_[p_] == '*' || s_[p_] == '/')) {
            char op = s_[p_++];
            e = bin(op, e, atom());
        }
        return e;
    }
    ExprPtr atom() {
        if (p_ >= s_.size()) fail("expression ends early");
        char c = s_[p_];
        if (c == '(') {
            ++p_;
            ExprPtr e = sum();
            expect(')');
            return e;
        }
        if (c == '-') {
            ++p_;
            auto zero = std::make_shared<Expr>();
            return bin('-', zero, atom());
        }
        if (s_.compare(p_, 5, "cdiv(") == 0) {
            p_ += 5;
            ExprPtr a = sum();
            expect(',');
            ExprPtr b = sum();
            expect(')');
            return bin('c', a, b);
        }
        auto e = std::make_shared<Expr>();
        if (c == 'd') {
            ++p_;
            e->kind = Expr::Var;
            e->input = static_cast<size_t>(number());
            expect('_');
            e->axis = static_cast<size_t>(number());
            return e;
        }
        e->value = number();
        return e;
    }
    int64_t number() {
        size_t start = p_;
        while (p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9') ++p_;
        if (start == p_) fail("number expected");
        return std::stoll(s_.substr(start, p_ - start));
    }
    void expect(char c) {
        if (p_ >= s_.size() || s_[p_] != c) fail(std::string("'") + c + "' expected");
        ++p_;
    }
    static ExprPtr bin(char op, ExprPtr a, ExprPtr b) {
        auto e = std::make_shared<Expr>();
        e->kind = Expr::Bin;
        e->op = op;
        e->a = std::move(a);
        e->b = std::move(b);
        return e;
    }
    [[noreturn]] void fail(const std::string& why) const {
        OPENVINO_THROW("netdsl shape program: ", why, " at position ", p_, " of '", s_, "'");
    }
    const std::string& s_;
    size_t p_ = 0;
};

inline int64_t floor_div(int64_t a, int64_t b) {
    if (b == 0) OPENVINO_THROW("netdsl shape program: division by a zero dim");
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// The value of e for these input shapes; empty when it depends on a dynamic dim.
inline std::optional<int64_t> eval(const Expr& e, const std::vector<ov::PartialShape>& in) {
    switch (e.kind) {
        case Expr::Const: return e.value;
        case Expr::Var: {
            const auto& s = in.at(e.input);
            if (s.rank().is_dynamic() || e.axis >= s.size() || s[e.axis].is_dynamic()) return std::nullopt;
            return s[e.axis].get_length();
        }
        case Expr::Bin: break;
    }
    auto a = eval(*e.a, in), b = eval(*e.b, in);
    if (!a || !b) return std::nullopt;
    switch (e.op) {
        case '+': return *a + *b;
        case '-': return *a - *b;
        case '*': return *a * *b;
        case '/': return floor_div(*a, *b);
        default: return -floor_div(-*a, *b);
    }
}

struct Program {
    std::vector<std::string> inputs;
    std::vector<std::pair<std::string, std::vector<ExprPtr>>> outputs;
};

inline std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string item;
    std::istringstream in(s);
    while (std::getline(in, item, sep)) out.push_back(item);
    if (!s.empty() && s.back() == sep) out.emplace_back();
    return out;
}

inline Program parse_program(const std::string& text) {
    auto arrow = text.find("->");
    if (arrow == std::string::npos) OPENVINO_THROW("netdsl shape program: no '->' in '", text, "'");
    Program p;
    std::string ins = text.substr(0, arrow);
    if (!ins.empty()) p.inputs = split(ins, ',');
    for (const auto& out : split(text.substr(arrow + 2), ';')) {
        auto parts = split(out, ':');
        if (parts.empty()) OPENVINO_THROW("netdsl shape program: empty output in '", text, "'");
        std::vector<ExprPtr> dims;
        for (size_t i = 1; i < parts.size(); ++i) dims.push_back(ExprParser(parts[i]).parse());
        p.outputs.emplace_back(parts[0], std::move(dims));
    }
    return p;
}

inline ov::element::Type element_type(const std::string& name) {
    using ov::element::Type_t;
    if (name == "float32") return Type_t::f32;
    if (name == "float16") return Type_t::f16;
    if (name == "bfloat16") return Type_t::bf16;
    if (name == "float64") return Type_t::f64;
    if (name == "int8") return Type_t::i8;
    if (name == "uint8") return Type_t::u8;
    if (name == "int32") return Type_t::i32;
    if (name == "int64") return Type_t::i64;
    if (name == "bool") return Type_t::boolean;
    OPENVINO_THROW("netdsl: unknown element type '", name, "'");
}

inline DType dtype(const ov::element::Type& t, const char* plugin) {
    using ov::element::Type_t;
    switch (t) {
        case Type_t::f32: return DType::float32;
        case Type_t::f16: return DType::float16;
        case Type_t::bf16: return DType::bfloat16;
        case Type_t::f64: return DType::float64;
        case Type_t::i8: return DType::int8;
        case Type_t::u8: return DType::uint8;
        case Type_t::i32: return DType::int32;
        case Type_t::i64: return DType::int64;
        case Type_t::boolean: return DType::boolean;
        default: OPENVINO_THROW("plugin '", plugin, "': element type ", t, " is not supported");
    }
}

inline std::vector<double> parse_floats(const std::string& s) {
    std::vector<double> out;
    if (s.empty()) return out;
    for (const auto& item : split(s, ',')) out.push_back(std::strtod(item.c_str(), nullptr));
    return out;
}

// validate_and_infer_types of a generated op: input types checked, output types and shapes set.
inline void infer(ov::Node& node, const std::string& text, const std::vector<std::string>& dtypes,
                  const char* plugin) {
    if (text.empty()) return;  // attributes not visited yet (an op being read from IR)
    Program p = parse_program(text);
    const size_t n = node.get_input_size();
    if (n != p.inputs.size())
        OPENVINO_THROW("plugin '", plugin, "' (", node.get_friendly_name(), "): ", n, " inputs, its shape program has ",
                       p.inputs.size());
    const ov::element::Type T = n ? node.get_input_element_type(0) : ov::element::f32;
    bool allowed = false;
    for (const auto& d : dtypes) allowed = allowed || element_type(d) == T;
    if (!allowed)
        OPENVINO_THROW("plugin '", plugin, "' (", node.get_friendly_name(), "): element type ", T,
                       " is not among its declared dtypes");
    std::vector<ov::PartialShape> shapes;
    for (size_t i = 0; i < n; ++i) {
        const auto want = p.inputs[i] == "T" ? T : element_type(p.inputs[i]);
        if (node.get_input_element_type(i) != want)
            OPENVINO_THROW("plugin '", plugin, "' (", node.get_friendly_name(), "): input ", i, " is ",
                           node.get_input_element_type(i), ", expected ", want);
        shapes.push_back(node.get_input_partial_shape(i));
    }
    for (size_t k = 0; k < p.outputs.size(); ++k) {
        std::vector<ov::Dimension> dims;
        for (const auto& e : p.outputs[k].second) {
            auto v = eval(*e, shapes);
            dims.push_back(v ? ov::Dimension(*v) : ov::Dimension::dynamic());
        }
        const auto& t = p.outputs[k].first;
        node.set_output_type(k, t == "T" ? T : element_type(t), ov::PartialShape(dims));
    }
}

using ComputeFn = void (*)(const Inputs&, Outputs&, const Attrs&);

// evaluate of a generated op: outputs shaped by the program, then the author's netdsl_compute.
inline bool evaluate(ov::TensorVector& outputs, const ov::TensorVector& inputs, const std::string& text,
                     const Attrs& attrs, ComputeFn compute, const char* plugin) {
    Program p = parse_program(text);
    Inputs in;
    std::vector<ov::PartialShape> shapes;
    for (const auto& t : inputs) {
        Tensor x;
        x.data = const_cast<void*>(t.data());
        x.dtype = dtype(t.get_element_type(), plugin);
        for (auto d : t.get_shape()) x.shape.push_back(static_cast<int64_t>(d));
        shapes.emplace_back(t.get_shape());
        in.push_back(std::move(x));
    }
    Outputs out;
    for (size_t k = 0; k < p.outputs.size() && k < outputs.size(); ++k) {
        ov::Shape shape;
        for (const auto& e : p.outputs[k].second) {
            auto v = eval(*e, shapes);
            if (!v || *v < 0) OPENVINO_THROW("plugin '", plugin, "': output ", k, " has no valid static shape");
            shape.push_back(static_cast<size_t>(*v));
        }
        outputs[k].set_shape(shape);
        Tensor y;
        y.data = outputs[k].data();
        y.dtype = dtype(outputs[k].get_element_type(), plugin);
        for (auto d : shape) y.shape.push_back(static_cast<int64_t>(d));
        out.push_back(std::move(y));
    }
    try {
        compute(in, out, attrs);
    } catch (const std::exception& e) {
        OPENVINO_THROW("plugin '", plugin, "' CPU code (netdsl_compute) failed: ", e.what());
    }
    return true;
}

}  // namespace ovsupport
}  // namespace netdsl
