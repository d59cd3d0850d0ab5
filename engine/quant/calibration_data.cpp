// q8::load_calibration: calibration samples from an .npy file, a folder of .npy files, or a
// folder of images (image.h).
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "io/file_io.h"
#include "io/image.h"
#include "ir/graph.h"
#include "q8/q8.h"

namespace q8 {

namespace {

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string lower_ext(const std::string& name) {
  const size_t dot = name.rfind('.');
  std::string e = dot == std::string::npos ? "" : name.substr(dot + 1);
  for (char& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

// Bilinear resize of an interleaved 8-bit image to CHW floats in [0, 1] (pixel centres aligned).
std::vector<float> resize_to_chw(const unsigned char* img, int w, int h, int c, int64_t ow, int64_t oh) {
  std::vector<float> out(static_cast<size_t>(c * ow * oh));
  for (int64_t y = 0; y < oh; ++y) {
    const double sy = std::min(std::max((y + 0.5) * h / oh - 0.5, 0.0), h - 1.0);
    const int y0 = static_cast<int>(sy), y1 = std::min(y0 + 1, h - 1);
    const double fy = sy - y0;
    for (int64_t x = 0; x < ow; ++x) {
      const double sx = std::min(std::max((x + 0.5) * w / ow - 0.5, 0.0), w - 1.0);
      const int x0 = static_cast<int>(sx), x1 = std::min(x0 + 1, w - 1);
      const double fx = sx - x0;
      for (int ch = 0; ch < c; ++ch) {
        auto px = [&](int yy, int xx) { return static_cast<double>(img[(static_cast<size_t>(yy) * w + xx) * c + ch]); };
        const double v =
            (px(y0, x0) * (1 - fx) + px(y0, x1) * fx) * (1 - fy) + (px(y1, x0) * (1 - fx) + px(y1, x1) * fx) * fy;
        out[(ch * oh + y) * ow + x] = static_cast<float>(v / 255.0);
      }
    }
  }
  return out;
}

}  // namespace

std::vector<Tensor> load_calibration(const std::string& path, const Model& model, const CalibrationSource& src) {
  if (model.inputs().size() != 1)
    throw Error(path + ": calibration files serve single-input models; this model has " +
                std::to_string(model.inputs().size()) + " inputs (use the C++ API)");
  const std::vector<int64_t>& in = model.inputs()[0].shape;
  const size_t rank = in.size();
  std::vector<int64_t> sample_shape(in.begin() + (rank ? 1 : 0), in.end());  // one sample, no batch

  std::vector<float> data;
  int64_t count = 0;
  auto take = [&](const Tensor& t, const std::string& name) {
    // A file holds either one sample (no batch axis) or a batch along axis 0.
    std::vector<int64_t> s = t.shape();
    if (s.size() + 1 == rank) s.insert(s.begin(), 1);
    bool fits = s.size() == rank && rank > 0;
    for (size_t d = 1; fits && d < rank; ++d) fits = in[d] < 0 || in[d] == s[d];
    if (!fits)
      throw Error(name + ": shape " + ir::shape_str(t.shape()) + " does not fit the model's input " +
                  ir::shape_str(in) + " (samples along axis 0)");
    if (count > 0) {
      for (size_t d = 1; d < rank; ++d)
        if (s[d] != sample_shape[d - 1])
          throw Error(name + ": shape " + ir::shape_str(t.shape()) + " differs from the other calibration samples");
    } else {
      sample_shape.assign(s.begin() + 1, s.end());
    }
    data.insert(data.end(), t.values().begin(), t.values().end());
    count += s[0];
  };

  if (!is_dir(path)) {
    if (lower_ext(path) != "npy") throw Error(path + ": calibration data must be an .npy file or a folder");
    take(load_npy(path), path);
  } else {
    DIR* d = ::opendir(path.c_str());
    if (!d) throw Error(path + ": cannot open the folder");
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      const std::string x = lower_ext(n);
      if (x == "npy" || x == "png" || x == "jpg" || x == "jpeg" || x == "bmp") names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    if (names.empty()) throw Error(path + ": no .npy, PNG or JPEG files in the folder");
    for (const std::string& n : names) {
      if (src.max_samples > 0 && count >= src.max_samples) break;
      const std::string f = path + "/" + n;
      if (lower_ext(n) == "npy") {
        take(load_npy(f), f);
        continue;
      }
      // An image: channels, height and width from the model (or --size).
      if (rank != 4) throw Error(f + ": images need a model whose input is [N, C, H, W]");
      const int64_t C = in[1];
      const int64_t H = src.height > 0 ? src.height : in[2], W = src.width > 0 ? src.width : in[3];
      if ((C != 1 && C != 3) || H <= 0 || W <= 0)
        throw Error(f + ": cannot tell the image size or channels from input " + ir::shape_str(in) + "; give --size");
      const Image img = decode_image(read_regular_file(f, kMaxImageFileBytes), f, static_cast<int>(C));
      std::vector<float> chw = resize_to_chw(img.pixels.data(), img.width, img.height, img.channels, W, H);
      auto per_channel = [&](const std::vector<float>& v, float def, const char* what) {
        if (v.empty()) return std::vector<float>(static_cast<size_t>(C), def);
        if (v.size() == 1) return std::vector<float>(static_cast<size_t>(C), v[0]);
        if (static_cast<int64_t>(v.size()) != C)
          throw Error(std::string("--") + what + " has " + std::to_string(v.size()) + " values for " +
                      std::to_string(C) + " channels");
        return v;
      };
      const std::vector<float> mean = per_channel(src.mean, 0.f, "mean"), sd = per_channel(src.std, 1.f, "std");
      for (int64_t c = 0; c < C; ++c) {
        if (!(sd[c] > 0.f)) throw Error("--std must be > 0");
        for (int64_t p = 0; p < H * W; ++p) chw[c * H * W + p] = (chw[c * H * W + p] - mean[c]) / sd[c];
      }
      take(Tensor({C, H, W}, std::move(chw)), f);
    }
  }
  if (count == 0) throw Error(path + ": the calibration set is empty");
  if (src.max_samples > 0 && count > src.max_samples) {
    data.resize(static_cast<size_t>(src.max_samples * (static_cast<int64_t>(data.size()) / count)));
    count = src.max_samples;
  }
  std::vector<int64_t> shape{count};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  return {Tensor(shape, std::move(data))};
}

}  // namespace q8
