// The "Draw a digit" panel: the drawing made into a 28x28 MNIST digit (as mnist_digit does in
// explorer/views/drawing.py), and every network's forward pass, in plain JavaScript, offline.
(() => {
  const data = JSON.parse(document.getElementById("drawing-data").textContent);
  const SIDE = 28, BOX = 20, PIXELS = SIDE * SIDE;
  const bytes = (text) => Uint8Array.from(atob(text), (character) => character.charCodeAt(0));
  const floats = (text) => new Float32Array(bytes(text).buffer);  // little-endian, as Python wrote them

  // erf(x) = 2/sqrt(pi) exp(-x^2) sum 2^n x^(2n+1) / (1 3 5 ... (2n+1)): every term is positive, so
  // the sum loses nothing to cancellation (about 1e-15); past |x| = 6, erf is 1 to 1e-17.
  function erf(x) {
    const a = Math.abs(x);
    if (a > 6) return Math.sign(x);
    let term = a, sum = a;
    for (let n = 1; term > 1e-17 * sum; n++) {
      term *= (2 * a * a) / (2 * n + 1);
      sum += term;
    }
    return ((Math.sign(x) * 2) / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum;
  }
  const sigmoid = (x) => 1 / (1 + Math.exp(-x));
  // Keras' formulas and defaults (keras.activations): elu alpha 1, leaky_relu slope 0.2, gelu exact.
  const ACTIVATIONS = {
    linear: (x) => x,
    relu: (x) => Math.max(x, 0),
    sigmoid,
    tanh: Math.tanh,
    elu: (x) => (x > 0 ? x : Math.expm1(x)),
    selu: (x) => 1.0507009873554805 * (x > 0 ? x : 1.6732632423543772 * Math.expm1(x)),
    gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
    silu: (x) => x * sigmoid(x),
    swish: (x) => x * sigmoid(x),
    softplus: (x) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))),
    leaky_relu: (x) => (x > 0 ? x : 0.2 * x),
  };
  function softmax(values) {
    const top = Math.max(...values);
    const exps = values.map((value) => Math.exp(value - top));
    const sum = exps.reduce((a, b) => a + b, 0);
    return exps.map((value) => value / sum);
  }
  const activate = (values, name) => (name === "softmax" ? softmax(values) : values.map(ACTIVATIONS[name]));

  const networks = data.networks.map((network) => ({
    ...network,
    output: network.layers.filter((layer) => layer.activation).at(-1).activation,
    layers: network.layers.map((layer) => ({
      ...layer,
      ...(layer.kernel && { kernel: floats(layer.kernel), bias: floats(layer.bias) }),
      ...(layer.scale && { scale: floats(layer.scale), shift: floats(layer.shift) }),
    })),
  }));

  function dense(input, layer) {
    const { kernel, units } = layer;  // kernel: (inputs, units), row by row
    const output = Float64Array.from(layer.bias);
    for (let i = 0; i < input.length; i++) {
      if (input[i] === 0) continue;  // most of a digit's pixels are 0
      for (let j = 0, row = i * units; j < units; j++) output[j] += input[i] * kernel[row + j];
    }
    return activate(output, layer.activation);
  }
  const LAYERS = {
    dense,
    activation: (input, layer) => activate(input, layer.activation),
    affine: (input, layer) => input.map((value, j) => value * layer.scale[j] + layer.shift[j]),  // BatchNormalization
  };
  const forward = (network, pixels) => network.layers.reduce((values, layer) => LAYERS[layer.kind](values, layer), pixels);

  function predict(pixels) {
    if (pixels.length !== PIXELS) throw new Error(`predict takes ${PIXELS} pixels, not ${pixels.length}`);
    const input = Float64Array.from(pixels);
    return Object.fromEntries(networks.map((network) => [network.name, Array.from(forward(network, input))]));
  }

  // Each target pixel averages its share of the source pixels (mnist_digit's _area_weights).
  function areaWeights(source, target) {
    const scale = source / target, rows = [];
    for (let i = 0; i < target; i++) {
      const low = i * scale, high = (i + 1) * scale, row = [];
      for (let k = Math.floor(low); k < Math.min(Math.ceil(high), source); k++) {
        row.push([k, Math.max(0, Math.min(high, k + 1) - Math.max(low, k)) / scale]);
      }
      rows.push(row);
    }
    return rows;
  }
  function mnistDigit(image, height, width) {
    const digit = new Float64Array(PIXELS), ink = (r, c) => Math.min(1, Math.max(0, image[r * width + c]));
    let top = height, bottom = -1, left = width, right = -1;
    for (let r = 0; r < height; r++) {
      for (let c = 0; c < width; c++) {
        if (ink(r, c) > 0) [top, bottom, left, right] = [Math.min(top, r), r, Math.min(left, c), Math.max(right, c)];
      }
    }
    if (bottom < 0) return digit;
    const boxHeight = bottom - top + 1, boxWidth = right - left + 1, longer = Math.max(boxHeight, boxWidth);
    const h = Math.max(1, Math.floor((boxHeight * BOX) / longer + 0.5));
    const w = Math.max(1, Math.floor((boxWidth * BOX) / longer + 0.5));
    const rows = new Float64Array(h * boxWidth), small = new Float64Array(h * w);
    areaWeights(boxHeight, h).forEach((row, i) => row.forEach(([k, weight]) => {
      for (let c = 0; c < boxWidth; c++) rows[i * boxWidth + c] += weight * ink(top + k, left + c);
    }));
    const columns = areaWeights(boxWidth, w);
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) columns[j].forEach(([k, weight]) => (small[i * w + j] += weight * rows[i * boxWidth + k]));
    }
    let mass = 0, rowMass = 0, columnMass = 0;
    small.forEach((value, index) => {
      mass += value;
      rowMass += value * Math.floor(index / w);
      columnMass += value * (index % w);
    });
    const millionth = (value) => Math.floor(value * 1e6 + 0.5) / 1e6;  // a centre between two pixels rounds as in Python
    const shiftTop = Math.floor(SIDE / 2 - millionth(rowMass / mass) + 0.5);
    const shiftLeft = Math.floor(SIDE / 2 - millionth(columnMass / mass) + 0.5);
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        const [r, c] = [shiftTop + i, shiftLeft + j];
        if (r >= 0 && r < SIDE && c >= 0 && c < SIDE) digit[r * SIDE + c] = Math.min(1, Math.max(0, small[i * w + j]));
      }
    }
    return digit;
  }

  // --- The page: the canvas, the digit as the networks see it, and their answers ---
  const canvas = document.getElementById("drawing-canvas"), pen = canvas.getContext("2d", { willReadFrequently: true });
  const seen = document.getElementById("drawing-seen").getContext("2d"), caption = document.getElementById("drawing-caption");
  const body = document.querySelector("#drawing-answers tbody");
  const HOW = { linear: " (linear outputs, shown through a softmax)", sigmoid: " (sigmoid outputs, each on its own)" };
  for (const network of networks) {
    const row = body.insertRow();
    row.insertCell().textContent = network.name + (HOW[network.output] || "");
    row.cells[0].className = "text";
    for (let digit = 0; digit <= 10; digit++) row.insertCell().textContent = "-";
  }
  let shown = new Float64Array(PIXELS), answers = {};

  function show(pixels, text) {
    const picture = seen.createImageData(SIDE, SIDE);
    pixels.forEach((value, index) => picture.data.set([255 * value, 255 * value, 255 * value, 255], 4 * index));
    seen.putImageData(picture, 0, 0);
    caption.textContent = text;
    shown = Float64Array.from(pixels);
    answers = predict(shown);
    networks.forEach((network, index) => {
      const raw = answers[network.name], outputs = network.output === "linear" ? softmax(raw) : raw;
      const top = outputs.indexOf(Math.max(...outputs)), cells = body.rows[index].cells;
      outputs.forEach((value, digit) => {
        cells[digit + 1].textContent = (100 * value).toFixed(1);
        cells[digit + 1].style.background = `rgba(31, 119, 180, ${Math.min(1, Math.max(0, value)) * 0.6})`;
        cells[digit + 1].className = digit === top ? "top" : "";
      });
      cells[11].textContent = String(top);
    });
  }
  function canvasImage() {
    const rgba = pen.getImageData(0, 0, canvas.width, canvas.height).data;
    return Float64Array.from({ length: canvas.width * canvas.height }, (_, index) => rgba[4 * index] / 255);
  }
  const update = () => show(mnistDigit(canvasImage(), canvas.height, canvas.width), "Your digit, as the networks see it (outputs in %).");
  function clear() {
    pen.fillStyle = "#000";
    pen.fillRect(0, 0, canvas.width, canvas.height);
    [pen.strokeStyle, pen.fillStyle, pen.lineWidth, pen.lineCap, pen.lineJoin] = ["#fff", "#fff", 22, "round", "round"];
  }
  clear();

  let last = null, pending = false;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [((event.clientX - box.left) * canvas.width) / box.width, ((event.clientY - box.top) * canvas.height) / box.height];
  };
  const later = () => pending || ((pending = true), requestAnimationFrame(() => ((pending = false), update())));
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = at(event);
    pen.beginPath();
    pen.arc(last[0], last[1], pen.lineWidth / 2, 0, 2 * Math.PI);
    pen.fill();
    later();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const point = at(event);
    pen.beginPath();
    pen.moveTo(...last);
    pen.lineTo(...point);
    pen.stroke();
    last = point;
    later();
  });
  for (const name of ["pointerup", "pointercancel"]) canvas.addEventListener(name, () => ((last = null), update()));
  document.getElementById("drawing-clear").addEventListener("click", () => (clear(), update()));

  const test = document.getElementById("drawing-test");
  let next = 0;
  test.disabled = data.digits.length === 0;
  test.title = test.disabled ? "the best network got no test digit wrong" : "";
  test.addEventListener("click", () => {
    const digit = data.digits[next++ % data.digits.length];
    clear();
    show(Array.from(bytes(digit.pixels), (value) => value / 255),
         `A test digit: a ${digit.label}, which ${data.best} took for a ${digit.answer} (outputs in %).`);
  });

  window.explorer = Object.assign(window.explorer || {}, {
    predict, mnistDigit, erf, activations: Object.keys(ACTIVATIONS),
    canvasImage: () => Array.from(canvasImage()), shown: () => Array.from(shown), answers: () => answers,
  });
})();
