// The Java entry's server and client, compiled by the test with javac:
//   java CompatHTTP serve HOST PORT FILE   com.sun.net.httpserver on HOST:PORT:
//       GET /blob the file; POST /sha256 the SHA-256 (hex) of the body; GET /peer "peer=<address>"
//   java CompatHTTP fetch BASE-URL UPLOAD-FILE   java.net.http.HttpClient: /blob eight times at
//       once, the file to /sha256, /peer; prints "blob <sha256>", "upload <sha256>", "peer=<address>"
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;

public class CompatHTTP {
    public static void main(String[] args) throws Exception {
        if (args.length == 4 && args[0].equals("serve")) {
            serve(args[1], Integer.parseInt(args[2]), Path.of(args[3]));
        } else if (args.length == 3 && args[0].equals("fetch")) {
            fetch(args[1], Path.of(args[2]));
        } else {
            System.err.println("usage: CompatHTTP serve HOST PORT FILE | fetch BASE-URL UPLOAD-FILE");
            System.exit(2);
        }
    }

    static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static void reply(HttpExchange ex, byte[] body) throws IOException {
        ex.sendResponseHeaders(200, body.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(body);
        }
    }

    static void serve(String host, int port, Path file) throws IOException {
        HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getByName(host), port), 64);
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.createContext("/blob", ex -> reply(ex, Files.readAllBytes(file)));
        server.createContext("/sha256", ex ->
                reply(ex, sha256(ex.getRequestBody().readAllBytes()).getBytes(StandardCharsets.UTF_8)));
        server.createContext("/peer", ex -> reply(ex,
                ("peer=" + ex.getRemoteAddress().getAddress().getHostAddress() + "\n").getBytes(StandardCharsets.UTF_8)));
        server.start();
        System.out.println("listening on " + host + ":" + port);
    }

    static void fetch(String base, Path upload) throws Exception {
        HttpClient client = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(30))
                .build();
        List<CompletableFuture<HttpResponse<byte[]>>> blobs = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            blobs.add(client.sendAsync(get(base + "/blob"), HttpResponse.BodyHandlers.ofByteArray()));
        }
        for (CompletableFuture<HttpResponse<byte[]>> f : blobs) {
            System.out.println("blob " + sha256(ok(f.get()).body()));
        }
        HttpRequest post = HttpRequest.newBuilder(URI.create(base + "/sha256"))
                .timeout(Duration.ofSeconds(60))
                .POST(HttpRequest.BodyPublishers.ofFile(upload))
                .build();
        System.out.println("upload " + new String(ok(client.send(post, HttpResponse.BodyHandlers.ofByteArray())).body(), StandardCharsets.UTF_8));
        System.out.print(new String(ok(client.send(get(base + "/peer"), HttpResponse.BodyHandlers.ofByteArray())).body(), StandardCharsets.UTF_8));
    }

    static HttpRequest get(String url) {
        return HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(60)).GET().build();
    }

    static <T> HttpResponse<T> ok(HttpResponse<T> r) {
        if (r.statusCode() != 200) {
            throw new IllegalStateException(r.request().uri() + ": HTTP " + r.statusCode());
        }
        return r;
    }
}
