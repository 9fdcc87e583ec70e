// DigitGlyph's light widget frontend for Voila (the default page of `make app`; digitglyph/serve.py).
//
// Voila's own frontend is JupyterLab's: 5 MB of JavaScript in about 100 requests, several CPU-seconds of a
// browser's time per page.  The app needs a handful of widgets, so this page speaks the Jupyter widget
// protocol itself, in one small file:
//
//   1. Connection: the page's kernel websocket (the `v1.kernel.websocket.jupyter.org` framing, as Voila's
//      frontend uses), reconnecting with back-off if it drops; the kernel and the drawing stay on the server.
//   2. Widget state: the `jupyter.widget.control` comm's `request_states`, then `update` / `echo_update` /
//      `custom` messages on each widget's comm (ipywidgets 8, protocol 2).
//   3. Views for the widgets the app uses: Box, HBox, VBox, HTML, Button, IntSlider, Image, ipycanvas's
//      Canvas and its CanvasManager (the drawing commands the app sends).  The canvas inks strokes itself
//      and sends pointer moves in batches (see canvasView).  A widget outside this list
//      shows a visible "not supported" box and a console error, never a silent gap.
//   4. Closing the page shuts its kernel down (`voila/api/shutdown`), as Voila's frontend does.
//
// `make app FRONTEND=lab` serves Voila's full JupyterLab frontend instead (any widget library).
"use strict";

(() => {
  const PROTOCOL = "v1.kernel.websocket.jupyter.org";
  const WIDGET_VIEW = "application/vnd.jupyter.widget-view+json";
  const CONTROL_TARGET = "jupyter.widget.control";
  const RECONNECT_DELAYS_MS = [500, 1000, 2000, 4000, 8000, 15000, 30000];
  const MOVES_PER_MESSAGE = 256; // a stroke's points per message to the kernel (digitglyph/app.py MAX_POINTS_PER_MESSAGE)
  // ipycanvas 0.14: the command list (ipycanvas/canvas.py _CMD_LIST) and the context attributes (Canvas.ATTRS)
  const CANVAS_COMMANDS = [
    "fillRect", "strokeRect", "fillRects", "strokeRects", "clearRect", "fillArc", "fillCircle", "strokeArc",
    "strokeCircle", "fillArcs", "strokeArcs", "fillCircles", "strokeCircles", "strokeLine", "beginPath",
    "closePath", "stroke", "strokePath", "fillPath", "fill", "moveTo", "lineTo", "rect", "arc", "ellipse",
    "arcTo", "quadraticCurveTo", "bezierCurveTo", "fillText", "strokeText", "setLineDash", "drawImage",
    "putImageData", "clip", "save", "restore", "translate", "rotate", "scale", "transform", "setTransform",
    "resetTransform", "set", "clear", "sleep", "fillPolygon", "strokePolygon", "strokeLines", "fillPolygons",
    "strokePolygons", "strokeLineSegments", "fillStyledRects", "strokeStyledRects", "fillStyledCircles",
    "strokeStyledCircles", "fillStyledArcs", "strokeStyledArcs", "fillStyledPolygons", "strokeStyledPolygons",
    "strokeStyledLineSegments", "switchCanvas",
  ];
  const CANVAS_ATTRIBUTES = [
    "fillStyle", "strokeStyle", "globalAlpha", "font", "textAlign", "textBaseline", "direction",
    "globalCompositeOperation", "lineWidth", "lineCap", "lineJoin", "miterLimit", "lineDashOffset",
    "shadowOffsetX", "shadowOffsetY", "shadowBlur", "shadowColor", "filter", "imageSmoothingEnabled",
  ];
  const LAYOUT_PROPERTIES = [
    "width", "height", "min_width", "min_height", "max_width", "max_height", "margin", "padding", "border",
    "display", "flex", "flex_flow", "align_items", "align_content", "align_self", "justify_content",
    "overflow", "visibility", "order",
  ];
  const TYPED_ARRAYS = {
    int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array, int32: Int32Array,
    uint32: Uint32Array, float32: Float32Array, float64: Float64Array,
  };

  const config = JSON.parse(document.getElementById("jupyter-config-data").textContent);
  const randomId = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) =>
    byte.toString(16).padStart(2, "0")).join("");
  const session = randomId();

  // -- 1. the kernel connection ----------------------------------------------------------------------

  // The page sends no binary buffers: a frame is the channel, header, parent header, metadata and content.
  function encodeFrame(channel, message) {
    const encoder = new TextEncoder();
    const parts = [channel, ...[message.header, message.parent_header, message.metadata, message.content].map(
      (part) => JSON.stringify(part))].map((text) => encoder.encode(text));
    const count = parts.length + 1; // each part's start, then the end of the last one
    const offsets = [];
    let end = 8 * (1 + count);
    for (const part of parts) {
      offsets.push(end);
      end += part.byteLength;
    }
    offsets.push(end);
    const frame = new Uint8Array(end);
    const view = new DataView(frame.buffer);
    view.setBigUint64(0, BigInt(count), true);
    offsets.forEach((offset, index) => view.setBigUint64(8 * (index + 1), BigInt(offset), true));
    parts.forEach((part, index) => frame.set(part, offsets[index]));
    return frame.buffer;
  }

  function decodeFrame(data) {
    const view = new DataView(data);
    const count = Number(view.getBigUint64(0, true));
    const offsets = Array.from({ length: count }, (_, index) => Number(view.getBigUint64(8 * (index + 1), true)));
    const part = (index) => data.slice(offsets[index], offsets[index + 1]);
    const decoder = new TextDecoder();
    const [header, parentHeader, metadata, content] = [1, 2, 3, 4].map((index) =>
      JSON.parse(decoder.decode(part(index))));
    const buffers = [];
    for (let index = 5; index < count - 1; index += 1) buffers.push(new DataView(part(index)));
    return { channel: decoder.decode(part(0)), header, parent_header: parentHeader, metadata, content, buffers };
  }

  class Kernel {
    constructor(onMessage, onStatus) {
      this.onMessage = onMessage;
      this.onStatus = onStatus;
      this.attempt = 0;
      this.closing = false;
      this.open();
    }

    open() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const url = `${scheme}://${location.host}${config.baseUrl}api/kernels/${config.kernelId}/channels` +
        `?session_id=${session}`;
      this.socket = new WebSocket(url, PROTOCOL);
      this.socket.binaryType = "arraybuffer";
      this.socket.onopen = () => {
        this.attempt = 0;
        this.onStatus("open");
      };
      this.socket.onmessage = (event) => this.onMessage(decodeFrame(event.data));
      this.socket.onclose = () => {
        if (this.closing) return;
        if (this.attempt >= RECONNECT_DELAYS_MS.length) {
          this.onStatus("lost");
          return;
        }
        this.onStatus("reconnecting");
        setTimeout(() => this.open(), RECONNECT_DELAYS_MS[this.attempt]);
        this.attempt += 1;
      };
    }

    get ready() {
      return this.socket.readyState === WebSocket.OPEN;
    }

    send(msgType, content, metadata = {}) {
      if (!this.ready) return false; // a pointer event while reconnecting is dropped, not queued
      const message = {
        header: {
          msg_id: randomId(), msg_type: msgType, username: "digitglyph", session,
          date: new Date().toISOString(), version: "5.3",
        },
        parent_header: {}, metadata, content,
      };
      this.socket.send(encodeFrame("shell", message));
      return true;
    }

    shutdown() {
      this.closing = true;
      const form = new FormData();
      const xsrf = document.cookie.match("\\b_xsrf=([^;]*)\\b");
      form.append("_xsrf", (xsrf && xsrf[1]) || "");
      navigator.sendBeacon(`${config.baseUrl}voila/api/shutdown/${config.kernelId}`, form);
      this.socket.close();
    }
  }

  // -- 2. widget models ------------------------------------------------------------------------------

  const models = new Map(); // model id -> Model
  let kernel = null;

  function putBuffers(state, paths, buffers) {
    paths.forEach((path, index) => {
      let object = state;
      for (const key of path.slice(0, -1)) object = object[key];
      object[path[path.length - 1]] = buffers[index];
    });
  }

  function modelOf(reference) {
    return typeof reference === "string" && reference.startsWith("IPY_MODEL_")
      ? models.get(reference.slice("IPY_MODEL_".length)) : undefined;
  }

  class Model {
    constructor(id, name, state) {
      this.id = id;
      this.name = name;
      this.state = state;
      this.listeners = [];
    }

    update(state) {
      Object.assign(this.state, state);
      for (const listener of this.listeners) listener(Object.keys(state));
    }

    onChange(listener) {
      this.listeners.push(listener);
    }

    send(data) {
      return kernel.send("comm_msg", { comm_id: this.id, data });
    }

    clientReady() { // ipycanvas: a view is ready, and the kernel draws the canvas again
      this.send({ method: "custom", content: { event: "client_ready" } });
    }

    sendState(state) {
      Object.assign(this.state, state);
      return this.send({ method: "update", state, buffer_paths: [] });
    }

    custom(content, buffers) {
      if (this.name === "CanvasManagerModel") runCanvasCommands(content, buffers);
    }
  }

  function addModel(id, name, state) {
    const model = new Model(id, name, state);
    models.set(id, model);
    if (name === "CanvasModel") {
      model.canvas = document.createElement("canvas");
      model.canvas.width = state.width;
      model.canvas.height = state.height;
      if (state._send_client_ready_event !== false) model.clientReady();
    }
    return model;
  }

  // -- ipycanvas: drawing commands from the kernel ---------------------------------------------------

  let currentCanvas = null;

  function canvasArray(argument, buffers) {
    const buffer = buffers[argument.idx];
    const Type = TYPED_ARRAYS[argument.dtype];
    if (!Type) throw new Error(`ipycanvas array of dtype ${argument.dtype} is not supported`);
    return new Type(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength));
  }

  function drawCommand(command, buffers) {
    const [index, args = []] = command;
    const name = CANVAS_COMMANDS[index];
    if (name === "switchCanvas") {
      currentCanvas = modelOf(args[0]);
      return;
    }
    if (!currentCanvas) return;
    const context = currentCanvas.canvas.getContext("2d");
    const { width, height } = currentCanvas.canvas;
    switch (name) {
      case "set":
        context[CANVAS_ATTRIBUTES[args[0]]] = args[1];
        break;
      case "clear":
        context.clearRect(0, 0, width, height);
        break;
      case "fillRect": case "strokeRect": case "clearRect":
        context[name](args[0], args[1], args[2], args[3] ?? args[2]);
        break;
      case "fillCircle": case "strokeCircle":
        context.beginPath();
        context.arc(args[0], args[1], args[2], 0, 2 * Math.PI);
        if (name === "fillCircle") context.fill(); else context.stroke();
        context.closePath();
        break;
      case "strokeLine":
        context.beginPath();
        context.moveTo(args[0], args[1]);
        context.lineTo(args[2], args[3]);
        context.stroke();
        context.closePath();
        break;
      case "strokeLines": case "fillPolygon": case "strokePolygon": {
        const points = canvasArray(args[0], buffers);
        context.beginPath();
        context.moveTo(points[0], points[1]);
        for (let at = 2; at < points.length; at += 2) context.lineTo(points[at], points[at + 1]);
        if (name === "fillPolygon") context.fill(); else { if (name === "strokePolygon") context.closePath(); context.stroke(); }
        context.closePath();
        break;
      }
      case "beginPath": case "closePath": case "stroke": case "fill": case "moveTo": case "lineTo": case "rect":
      case "arc": case "save": case "restore": case "translate": case "rotate": case "scale": case "resetTransform":
        context[name](...args);
        break;
      default:
        throw new Error(`ipycanvas command ${name} is not supported by this page (make app FRONTEND=lab)`);
    }
  }

  function runCanvasCommands(content, buffers) {
    const json = buffers[0];
    const commands = JSON.parse(new TextDecoder().decode(
      new Uint8Array(json.buffer, json.byteOffset, json.byteLength)));
    let rest = buffers.slice(1);
    const batch = Array.isArray(commands[0]) ? commands : [commands];
    for (const command of batch) {
      const count = command[2] || 0;
      drawCommand(command, rest.slice(0, count));
      rest = rest.slice(count);
    }
  }

  // -- 3. views --------------------------------------------------------------------------------------

  function applyLayout(element, model) {
    const layout = modelOf(model.state.layout);
    if (!layout) return;
    const apply = () => {
      for (const property of LAYOUT_PROPERTIES) {
        const value = layout.state[property];
        element.style.setProperty(property.replace(/_/g, "-"), value ?? "");
      }
    };
    apply();
    layout.onChange(apply);
  }

  function element(tag, classes, model) {
    const node = document.createElement(tag);
    node.className = ["widget", ...classes].join(" ");
    if (model) {
      const setClasses = () => {
        node.className = ["widget", ...classes, ...(model.state._dom_classes || [])].join(" ");
      };
      setClasses();
      model.onChange((keys) => keys.includes("_dom_classes") && setClasses());
      applyLayout(node, model);
    }
    return node;
  }

  function boxView(model, classes) {
    const node = element("div", classes, model);
    const fill = () => node.replaceChildren(...(model.state.children || []).map((child) => view(modelOf(child))));
    fill();
    model.onChange((keys) => keys.includes("children") && fill());
    return node;
  }

  function htmlView(model) {
    const node = element("div", ["widget-html"], model);
    const content = document.createElement("div");
    content.className = "widget-html-content";
    node.append(content);
    const show = () => {
      content.innerHTML = model.state.value ?? ""; // the kernel's own HTML: the app's notebook writes it
    };
    show();
    model.onChange((keys) => keys.includes("value") && show());
    return node;
  }

  function buttonView(model) {
    const node = element("button", ["widget-button", "jupyter-button"], model);
    const show = () => {
      node.textContent = model.state.description ?? "";
      node.title = model.state.tooltip ?? "";
      node.disabled = Boolean(model.state.disabled);
    };
    show();
    model.onChange(show);
    node.addEventListener("click", () => model.send({ method: "custom", content: { event: "click" } }));
    return node;
  }

  function intSliderView(model) {
    const node = element("div", ["widget-slider", "widget-hslider", "widget-inline-hbox"], model);
    const label = document.createElement("label");
    label.className = "widget-label";
    const range = document.createElement("input");
    range.type = "range";
    range.className = "widget-range";
    const readout = document.createElement("div");
    readout.className = "widget-readout";
    readout.contentEditable = "true";
    readout.spellcheck = false;
    node.append(label, range, readout);
    const show = () => {
      label.textContent = model.state.description ?? "";
      Object.assign(range, { min: model.state.min, max: model.state.max, step: model.state.step ?? 1 });
      range.value = model.state.value;
      range.disabled = readout.contentEditable === "false" || Boolean(model.state.disabled);
      if (document.activeElement !== readout) readout.textContent = String(model.state.value);
    };
    const choose = (text) => {
      const value = Math.round(Number(text));
      if (text.trim() === "" || !Number.isFinite(value)) {
        show(); // not a number: put the slider's value back
        return;
      }
      const bounded = Math.min(Math.max(value, model.state.min), model.state.max);
      model.sendState({ value: bounded }); // the kernel holds it to the brush range too (DrawingApp.check_brush)
      readout.textContent = String(bounded);
      show();
    };
    range.addEventListener("input", () => {
      readout.textContent = range.value;
    });
    range.addEventListener("change", () => choose(range.value));
    readout.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        readout.blur();
      }
    });
    readout.addEventListener("blur", () => choose(readout.textContent));
    show();
    model.onChange(show);
    return node;
  }

  function imageView(model) {
    const node = element("img", ["widget-image"], model);
    let url = null;
    const show = () => {
      if (url) URL.revokeObjectURL(url);
      const value = model.state.value;
      url = value && value.byteLength ? URL.createObjectURL(new Blob([value], { type: `image/${model.state.format}` })) : null;
      if (url) node.src = url; else node.removeAttribute("src");
      for (const side of ["width", "height"]) {
        if (model.state[side]) node.setAttribute(side, model.state[side]); else node.removeAttribute(side);
      }
    };
    show();
    model.onChange(show);
    return node;
  }

  // The canvas inks a stroke itself and sends its points to the kernel when the stroke ends: one message for a
  // stroke of up to MOVES_PER_MESSAGE points (a longer one sends each full batch on the way), handled by the kernel's
  // DrawingApp.stroke_points, instead of ipycanvas's one message per move each way.  When the stroke ends the
  // kernel recognises it and redraws the canvas from its strokes.
  function canvasView(model) {
    const node = model.canvas;
    const context = node.getContext("2d");
    node.className = ["widget", "widget-canvas", ...(model.state._dom_classes || [])].join(" ");
    applyLayout(node, model);
    const position = (event) => {
      const rect = node.getBoundingClientRect(); // as ipycanvas: canvas pixels under the pointer
      return { x: (node.width * (event.clientX - rect.left)) / rect.width, y: (node.height * (event.clientY - rect.top)) / rect.height };
    };
    let last = null; // the stroke's last point while the pointer is down
    let pending = []; // its points not sent yet
    const send = (end) => {
      model.send({ method: "custom", content: { event: "stroke_points", points: pending, end } });
      pending = [];
    };
    const end = () => {
      last = null;
      send(true);
    };
    const begin = (point) => {
      if (last) end();
      last = point;
      context.beginPath();
      context.arc(point.x, point.y, context.lineWidth / 2, 0, 2 * Math.PI);
      context.fill();
      pending = [[point.x, point.y]];
    };
    const move = (point) => {
      if (!last) return; // hovering: the kernel has nothing to do with it
      context.beginPath();
      context.moveTo(last.x, last.y);
      context.lineTo(point.x, point.y);
      context.stroke();
      last = point;
      pending.push([point.x, point.y]);
      if (pending.length === MOVES_PER_MESSAGE) send(false);
    };
    node.addEventListener("mousedown", (event) => begin(position(event)));
    node.addEventListener("mousemove", (event) => move(position(event)));
    for (const type of ["mouseup", "mouseout"]) {
      node.addEventListener(type, (event) => {
        if (!last) return;
        move(position(event));
        end();
      });
    }
    const touched = (type, handle) => node.addEventListener(type, (event) => {
      event.preventDefault();
      event.stopImmediatePropagation();
      handle(Array.from(event.touches, position));
    }, { passive: false });
    touched("touchstart", (touches) => touches.length && begin(touches[0]));
    touched("touchmove", (touches) => touches.length && move(touches[0]));
    touched("touchend", () => last && end());
    touched("touchcancel", () => last && end());
    return node;
  }

  function unsupportedView(model) {
    console.error(`DigitGlyph's light page cannot show a ${model && model.name} widget (make app FRONTEND=lab)`);
    const node = element("div", ["digitglyph-unsupported"]);
    node.textContent = `This page cannot show a ${model && model.name} widget.`;
    return node;
  }

  const VIEWS = {
    BoxModel: (model) => boxView(model, ["widget-container", "widget-box"]),
    HBoxModel: (model) => boxView(model, ["widget-container", "widget-box", "widget-hbox"]),
    VBoxModel: (model) => boxView(model, ["widget-container", "widget-box", "widget-vbox"]),
    HTMLModel: htmlView,
    ButtonModel: buttonView,
    IntSliderModel: intSliderView,
    ImageModel: imageView,
    CanvasModel: canvasView,
  };

  function view(model) {
    const make = model && VIEWS[model.name];
    return make ? make(model) : unsupportedView(model);
  }

  // -- the page: cells, status line, messages --------------------------------------------------------

  const status = document.createElement("div");
  status.className = "digitglyph-connection";
  status.setAttribute("role", "status");
  document.body.prepend(status);
  let controlCommId = null;
  let shown = false;

  function showCells() {
    document.getElementById("loading")?.remove();
    const cells = document.getElementById("rendered_cells");
    if (cells) cells.style.display = "";
    shown = true;
  }

  function renderOutputs() {
    for (const script of document.querySelectorAll('script[type="application/vnd.voila.cell-output+json"]')) {
      const output = JSON.parse(script.textContent);
      const data = output.data || {};
      let node;
      if (data[WIDGET_VIEW]) {
        node = view(models.get(data[WIDGET_VIEW].model_id));
      } else if (output.output_type === "stream" || data["text/plain"]) {
        node = document.createElement("pre");
        node.textContent = output.text ?? data["text/plain"];
      } else {
        continue;
      }
      script.replaceWith(node);
    }
  }

  function loadStates(data, buffers) {
    putBuffers(data.states, data.buffer_paths, buffers); // paths start with the model id
    for (const [id, entry] of Object.entries(data.states)) {
      if (models.has(id)) models.get(id).update(entry.state); // after a reconnection
      else addModel(id, entry.model_name, entry.state);
    }
    if (!shown) {
      renderOutputs();
      showCells();
    } else {
      for (const model of models.values()) {
        if (model.name === "CanvasModel") model.clientReady();
      }
    }
    kernel.send("comm_close", { comm_id: controlCommId, data: {} });
    controlCommId = null;
  }

  function onMessage(message) {
    const type = message.header.msg_type;
    const content = message.content;
    if (type === "comm_msg" && content.comm_id === controlCommId && content.data.method === "update_states") {
      // when the kernel sent the app's widgets (its clock): benchmarks/app_load.py splits the wait for a canvas with it
      document.body.dataset.statesSent = message.header.date;
      loadStates(content.data, message.buffers);
    } else if (type === "comm_msg" && models.has(content.comm_id)) {
      const model = models.get(content.comm_id);
      const data = content.data;
      if (data.method === "update" || data.method === "echo_update") {
        putBuffers(data.state, data.buffer_paths || [], message.buffers);
        // when the kernel sent the update being shown (its clock): benchmarks/app_load.py splits its latencies with it
        document.body.dataset.updateSent = message.header.date;
        model.update(data.state);
      } else if (data.method === "custom") {
        model.custom(data.content, message.buffers);
      }
    } else if (type === "comm_open" && content.target_name === "jupyter.widget") {
      const data = content.data;
      putBuffers(data.state, data.buffer_paths || [], message.buffers);
      addModel(content.comm_id, data.state._model_name, data.state);
    } else if (type === "comm_close") {
      models.delete(content.comm_id);
    }
  }

  function onStatus(state) {
    const texts = {
      open: "",
      reconnecting: "Reconnecting to the app…",
      lost: "The connection to the app was lost. Reload the page to draw again.",
    };
    status.textContent = texts[state];
    status.hidden = state === "open";
    if (state === "open") {
      controlCommId = randomId();
      kernel.send("comm_open", { comm_id: controlCommId, target_name: CONTROL_TARGET, data: {} }, { version: "1.0.0" });
      kernel.send("comm_msg", { comm_id: controlCommId, data: { method: "request_states" } });
      document.body.dataset.statesRequested = new Date().toISOString(); // for benchmarks/app_load.py, as statesSent
    }
  }

  kernel = new Kernel(onMessage, onStatus);
  window.addEventListener("beforeunload", () => kernel.shutdown());
})();
