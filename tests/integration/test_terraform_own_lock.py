"""A Terraform refused the state lock it wrote itself releases it and goes on; anyone else's lock stays.

The real Terraform 1.11.4 with its S3 backend and DynamoDB locking, against a moto_server of each
test's own (EMULATED: AWS is unreachable here). Between Terraform and moto's DynamoDB sits
`LostReplyProxy` (a stand-in for a network that drops one reply): it forwards the first conditional
lock write to moto, which stores the lock, and answers Terraform 500 instead of moto's 200. The AWS
SDK retries a 500 (aws-sdk-go-v2, aws/retry: DefaultRetryableHTTPStatusCodes holds 500), and the
retried write finds the lock already there (ConditionalCheckFailedException): Terraform reports the
lock as held, by itself, and exits leaving it. That is the failure seen twice here under load with
no proxy, in test_aws_stacks' interrupted-`up` scenarios (once in CI; in the other, moto's log shows
a lock write answered 200 and the same write again answered 400): `destroy` failed with "held by
root@vm ... another bioinfra/terraform is working on it" and left the lock.
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest

from bioinfra.adaptors.terraform import Terraform, TerraformError
from tests.conftest import moto_server

REGION = "eu-west-2"
STATE_BUCKET = "own-lock-tfstate"
LOCK_TABLE = "own-lock-tflocks"
STATE_KEY = "c/aws/storage/terraform.tfstate"
LOCK_PATH = f"{STATE_BUCKET}/{STATE_KEY}"  # the lock item's LockID (client.go, RemoteClient.lockPath)


class LostReplyProxy:
    """Forwards every request to moto; the first DynamoDB PutItem conditioned on the lock's absence
    (Terraform's lock write) reaches moto, and its reply is replaced by a 500."""

    def __init__(self, upstream: str):
        self.upstream = upstream.removeprefix("http://")
        self.lost_replies = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet: pytest shows failures, not traffic
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                conn.request("POST", self.path, body=body, headers={k: v for k, v in self.headers.items()})
                reply = conn.getresponse()
                data = reply.read()
                headers = reply.getheaders()
                conn.close()
                target = self.headers.get("X-Amz-Target", "")
                if target.endswith(".PutItem") and b"attribute_not_exists(LockID)" in body and proxy.lost_replies == 0:
                    proxy.lost_replies += 1
                    lost = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                                       "message": "the reply was lost (test proxy)"}).encode()
                    self.send_response(500)
                    self.send_header("Content-Type", "application/x-amz-json-1.0")
                    self.send_header("Content-Length", str(len(lost)))
                    self.end_headers()
                    self.wfile.write(lost)
                    return
                self.send_response(reply.status)
                for name, value in headers:
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LostReplyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def moto(tmp_path: Path):
    with moto_server(tmp_path / "moto") as url:
        kw = dict(endpoint_url=url, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        boto3.client("s3", **kw).create_bucket(Bucket=STATE_BUCKET,
                                               CreateBucketConfiguration={"LocationConstraint": REGION})
        boto3.client("dynamodb", **kw).create_table(
            TableName=LOCK_TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}])
        yield url


@pytest.fixture
def proxy(moto: str):
    with LostReplyProxy(moto) as running:
        yield running


def _lock_items(moto: str) -> list[dict]:
    """The lock items in the table (not the state digests Terraform keeps beside them, "<path>-md5")."""
    table = boto3.client("dynamodb", endpoint_url=moto, region_name=REGION, aws_access_key_id="testing",
                         aws_secret_access_key="testing")
    return [item for item in table.scan(TableName=LOCK_TABLE)["Items"] if item["LockID"]["S"] == LOCK_PATH]


def _stack(tmp_path: Path, moto: str, dynamodb: str, terraform_config: dict[str, str]) -> Terraform:
    """A stack folder with only Terraform's built-in terraform_data (no provider to start) and the S3
    backend as bioinfra configures it (backend-config.json), its DynamoDB calls going to `dynamodb`."""
    folder = tmp_path / "storage"
    folder.mkdir()
    (folder / "main.tf").write_text('terraform {\n  backend "s3" {}\n}\n\nresource "terraform_data" "kept" {\n'
                                    '  input = "results"\n}\n')
    (folder / "backend-config.json").write_text(json.dumps({
        "bucket": STATE_BUCKET, "key": STATE_KEY, "region": REGION, "dynamodb_table": LOCK_TABLE,
        "use_path_style": True, "endpoints": {"s3": moto, "dynamodb": dynamodb, "iam": moto, "sts": moto},
    }))
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), **terraform_config,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true"}
    tf = Terraform(folder, env)
    tf.init(backend_config_file="backend-config.json")
    return tf


def test_a_plan_refused_its_own_lock_releases_it_and_plans(tmp_path, moto, proxy, terraform_config):
    tf = _stack(tmp_path, moto, proxy.url, terraform_config)
    said: list[str] = []
    result = tf.stream(["plan", "-out=tfplan", "-detailed-exitcode"], say=said.append)
    assert proxy.lost_replies == 1  # the lost reply happened: this is the case under test
    assert result.returncode == 2, result.errors  # changes to make: the plan itself ran
    assert result.changes.get("add") == 1
    assert any("which it had written itself" in line and "trying again" in line for line in said), said
    assert _lock_items(moto) == []  # released: nothing left for the next command to trip on
    # The first attempt's log says what happened; its core log names the lock it wrote.
    logs = sorted((tf.workdir / "logs").glob("*-plan.log"))
    assert len(logs) == 2 and "Error acquiring the state lock" in logs[0].read_text()


def test_an_apply_after_the_lost_reply_applies_and_a_state_rm_recovers_too(tmp_path, moto, proxy, terraform_config):
    tf = _stack(tmp_path, moto, proxy.url, terraform_config)
    assert tf.stream(["plan", "-out=tfplan"]).returncode == 0  # the proxy's one lost reply: plan recovered
    applied = tf.stream(["apply", "tfplan"])
    assert applied.returncode == 0, applied.errors
    assert tf.state_list() == ["terraform_data.kept"]
    proxy.lost_replies = 0  # lose the next lock write's reply: `state rm` (a buffered call) locks too
    tf.state_rm(["terraform_data.kept"])
    assert proxy.lost_replies == 1
    assert tf.state_list() == []
    assert _lock_items(moto) == []


def test_a_lock_held_by_another_terraform_is_reported_and_left_alone(tmp_path, moto, terraform_config):
    tf = _stack(tmp_path, moto, moto, terraform_config)  # no proxy: a plain conflict
    foreign = {"ID": "5c4a6e1b-0d2f-4a8e-9b1c-2f3e4d5a6b7c", "Operation": "OperationTypeApply",
               "Info": "", "Who": "someone@elsewhere", "Version": "1.11.4",
               "Created": "2026-12-06T10:00:00Z", "Path": LOCK_PATH}
    boto3.client("dynamodb", endpoint_url=moto, region_name=REGION, aws_access_key_id="testing",
                 aws_secret_access_key="testing").put_item(
        TableName=LOCK_TABLE, Item={"LockID": {"S": LOCK_PATH}, "Info": {"S": json.dumps(foreign)}})
    said: list[str] = []
    result = tf.stream(["plan", "-out=tfplan"], say=said.append)
    assert result.returncode == 1
    assert result.lock is not None and result.lock.id == foreign["ID"] and result.lock.who == "someone@elsewhere"
    assert foreign["ID"] not in result.own_lock_ids and len(result.own_lock_ids) == 1
    assert said == []  # nothing released, nothing retried
    assert len(_lock_items(moto)) == 1
    with pytest.raises(TerraformError, match="Error acquiring the state lock|state lock"):
        tf.state_rm(["terraform_data.kept"])
    assert len(_lock_items(moto)) == 1  # still theirs
