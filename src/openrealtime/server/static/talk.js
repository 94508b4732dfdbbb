// The talk page: mint an ephemeral key through this server's client_secrets,
// then talk over WebRTC (POST /v1/realtime/calls), or over the WebSocket where
// WebRTC is missing or fails. Plain script, no build step, nothing from a CDN.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const KEY = "openrealtime.apiKey";
  const SESSION = {
    type: "realtime",
    audio: { input: { transcription: { model: "whisper-1" } } },
  };
  let active = null; // { close(), kind }
  const lines = new Map(); // item_id -> <li>

  // --- Status and transcript -------------------------------------------------

  function status(text, error = false) {
    $("status").textContent = text;
    $("status").classList.toggle("error", error);
  }

  function line(itemId, who) {
    let li = lines.get(itemId);
    if (!li) {
      li = document.createElement("li");
      li.className = `${who} pending`;
      li.dataset.item = itemId;
      const label = document.createElement("span");
      label.className = "who";
      label.textContent = who === "user" ? "You" : "Assistant";
      const text = document.createElement("span");
      text.className = "text";
      li.append(label, text);
      $("transcript").append(li);
      lines.set(itemId, li);
    }
    return li;
  }

  function append(itemId, who, delta) {
    const li = line(itemId, who);
    li.querySelector(".text").textContent += delta;
  }

  function settle(itemId, who, text) {
    const li = line(itemId, who);
    if (typeof text === "string") li.querySelector(".text").textContent = text;
    li.classList.remove("pending");
  }

  function handle(event) {
    switch (event.type) {
      case "session.created":
        $("session").hidden = false;
        $("session-id").textContent = event.session.id;
        $("inspect").href = `/inspector#${event.session.id}`;
        fetch("/inspector", { method: "HEAD" }).then((r) => {
          $("inspect").hidden = r.status === 404;
        }, () => {});
        status(`Connected over ${active ? active.kind : "?"}. Speak now.`);
        break;
      case "input_audio_buffer.speech_started":
        line(event.item_id, "user");
        status("Listening…");
        break;
      case "conversation.item.input_audio_transcription.delta":
        append(event.item_id, "user", event.delta);
        break;
      case "conversation.item.input_audio_transcription.completed":
        settle(event.item_id, "user", event.transcript || "(nothing heard)");
        break;
      case "conversation.item.input_audio_transcription.failed":
        settle(event.item_id, "user", "(not transcribed)");
        break;
      case "response.output_audio_transcript.delta":
      case "response.output_text.delta":
        append(event.item_id, "assistant", event.delta);
        status("Replying…");
        break;
      case "response.output_audio_transcript.done":
      case "response.output_text.done":
        settle(event.item_id, "assistant");
        break;
      case "conversation.item.truncated": {
        const li = lines.get(event.item_id);
        if (li) li.classList.add("interrupted");
        break;
      }
      case "response.done":
        status("Your turn.");
        break;
      case "error":
        status(`Error: ${event.error.message}`, true);
        break;
      default:
        break;
    }
  }

  // --- Keys ------------------------------------------------------------------

  async function errorOf(response) {
    try {
      const body = await response.json();
      return body.error.message;
    } catch {
      return `HTTP ${response.status}`;
    }
  }

  async function mint() {
    const headers = { "Content-Type": "application/json" };
    const key = localStorage.getItem(KEY);
    if (key) headers.Authorization = `Bearer ${key}`;
    const response = await fetch("/v1/realtime/client_secrets", {
      method: "POST",
      headers,
      body: JSON.stringify({ session: SESSION }),
    });
    if (response.status === 401) {
      $("key-form").hidden = false;
      $("key").focus();
      throw new Error("This server needs its API key: enter it above.");
    }
    if (!response.ok) throw new Error(await errorOf(response));
    return (await response.json()).value;
  }

  // --- WebRTC ----------------------------------------------------------------

  async function webrtc(ephemeral, microphone) {
    const pc = new RTCPeerConnection();
    pc.addTrack(microphone.getAudioTracks()[0], microphone);
    pc.ontrack = (event) => {
      $("player").srcObject = event.streams[0] || new MediaStream([event.track]);
    };
    const channel = pc.createDataChannel("oai-events");
    channel.onmessage = (message) => handle(JSON.parse(message.data));
    const opened = new Promise((resolve, reject) => {
      channel.onopen = resolve;
      setTimeout(() => reject(new Error("the call did not connect")), 15000);
    });
    const close = () => {
      channel.close();
      pc.close();
    };
    try {
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      const response = await fetch("/v1/realtime/calls", {
        method: "POST",
        body: offer.sdp,
        headers: {
          "Content-Type": "application/sdp",
          Authorization: `Bearer ${ephemeral}`,
        },
      });
      if (!response.ok) throw new Error(await errorOf(response));
      await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
      await opened;
    } catch (error) {
      close();
      throw error;
    }
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed" || pc.connectionState === "closed") {
        stop(`The call ended (${pc.connectionState}).`);
      }
    };
    channel.onclose = () => stop("The call ended.");
    return { kind: "WebRTC", close };
  }

  // --- WebSocket fallback ------------------------------------------------------

  function base64(bytes) {
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(text);
  }

  async function websocket(ephemeral, microphone) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/v1/realtime?model=gpt-realtime`, [
      "realtime",
      `openai-insecure-api-key.${ephemeral}`,
    ]);
    const context = new AudioContext({ sampleRate: 24000 });
    const source = context.createMediaStreamSource(microphone);
    const processor = context.createScriptProcessor(2048, 1, 1);
    const playing = new Set();
    let playAt = 0;
    processor.onaudioprocess = (event) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      const samples = event.inputBuffer.getChannelData(0);
      const pcm = new Int16Array(samples.length);
      for (let i = 0; i < samples.length; i++) {
        pcm[i] = Math.max(-1, Math.min(1, samples[i])) * 0x7fff;
      }
      ws.send(JSON.stringify({
        type: "input_audio_buffer.append",
        audio: base64(new Uint8Array(pcm.buffer)),
      }));
    };
    source.connect(processor);
    processor.connect(context.destination);
    const silence = () => {
      for (const node of playing) node.stop();
      playing.clear();
      playAt = 0;
    };
    ws.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.type === "response.output_audio.delta") {
        const raw = atob(event.delta);
        const pcm = new Int16Array(raw.length >> 1);
        for (let i = 0; i < pcm.length; i++) {
          pcm[i] = raw.charCodeAt(2 * i) | (raw.charCodeAt(2 * i + 1) << 8);
        }
        const buffer = context.createBuffer(1, pcm.length, 24000);
        const channel = buffer.getChannelData(0);
        for (let i = 0; i < pcm.length; i++) channel[i] = pcm[i] / 0x8000;
        const node = context.createBufferSource();
        node.buffer = buffer;
        node.connect(context.destination);
        playAt = Math.max(playAt, context.currentTime);
        node.start(playAt);
        playAt += buffer.duration;
        playing.add(node);
        node.onended = () => playing.delete(node);
        return;
      }
      if (event.type === "input_audio_buffer.speech_started") silence();
      handle(event);
    };
    const close = () => {
      silence();
      processor.disconnect();
      source.disconnect();
      context.close();
      ws.close();
    };
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error("the WebSocket did not connect"));
    });
    ws.onclose = () => stop("The session ended.");
    return { kind: "WebSocket", close };
  }

  // --- Buttons -----------------------------------------------------------------

  let microphone = null;

  function stop(text = "Call ended.") {
    if (active) {
      const call = active;
      active = null;
      try { call.close(); } catch { /* already closed */ }
    }
    if (microphone) {
      for (const track of microphone.getTracks()) track.stop();
      microphone = null;
    }
    $("talk").disabled = false;
    $("hangup").disabled = true;
    status(text);
  }

  async function talk() {
    $("talk").disabled = true;
    try {
      status("Getting a session key…");
      let ephemeral = await mint();
      status("Opening the microphone…");
      microphone = await navigator.mediaDevices.getUserMedia({ audio: true });
      const useWebRTC = "RTCPeerConnection" in window && !$("websocket").checked;
      if (useWebRTC) {
        try {
          status("Calling over WebRTC…");
          active = await webrtc(ephemeral, microphone);
        } catch (error) {
          status(`WebRTC failed (${error.message}); using the WebSocket…`);
          ephemeral = await mint();
        }
      }
      if (!active) active = await websocket(ephemeral, microphone);
      $("hangup").disabled = false;
      if ($("session-id").textContent) status(`Connected over ${active.kind}. Speak now.`);
    } catch (error) {
      stop(`Could not start: ${error.message}`);
      $("status").classList.add("error");
    }
  }

  $("talk").addEventListener("click", talk);
  $("hangup").addEventListener("click", () => stop());
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key").value.trim();
    if (key) localStorage.setItem(KEY, key);
    $("key").value = "";
    $("key-form").hidden = true;
    status("Key saved. Press Talk.");
  });
})();
